package admission

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestParseConfig(t *testing.T) {
	good := `{"rules": [{"name": "prod", "gate": "production", "namespaceSelector": {"matchLabels": {"quorate.dev/gate": "production"}}}]}`
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != Enforce || c.BreakGlass.Enabled || c.BreakGlass.Annotation != DefaultBreakGlassAnnotation ||
		c.Cache.Size != 4096 || time.Duration(c.Cache.TTL) != 5*time.Minute || time.Duration(c.Cache.DenyTTL) != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct{ name, cfg, want string }{
		{"unknown field", `{"rules": [], "mod": "audit"}`, "unknown field"},
		{"duplicate key", `{"mode": "audit", "mode": "enforce", "rules": []}`, "duplicate"},
		{"unknown mode", `{"mode": "warn", "rules": [{"name": "a", "gate": "g", "namespaces": ["x"]}]}`, "mode"},
		{"no rules", `{"rules": []}`, "no rules"},
		{"rule selecting nothing said", `{"rules": [{"name": "a", "gate": "g"}]}`, "neither namespaces nor namespaceSelector"},
		{"bad rule name", `{"rules": [{"name": "Prod/x", "gate": "g", "namespaces": ["x"]}]}`, "name"},
		{"rule name twice", `{"rules": [{"name": "a", "gate": "g", "namespaces": ["x"]}, {"name": "a", "gate": "h", "namespaces": ["y"]}]}`, "twice"},
		{"bad gate", `{"rules": [{"name": "a", "gate": "", "namespaces": ["x"]}]}`, "gate"},
		{"bad namespace", `{"rules": [{"name": "a", "gate": "g", "namespaces": ["Not_A_Namespace"]}]}`, "namespace"},
		{"bad selector operator", `{"rules": [{"name": "a", "gate": "g", "namespaceSelector": {"matchExpressions": [{"key": "k", "operator": "Near"}]}}]}`, "namespaceSelector"},
		{"selector unknown field", `{"rules": [{"name": "a", "gate": "g", "namespaceSelector": {"matchLabel": {"k": "v"}}}]}`, "unknown field"},
		{"bad duration", `{"rules": [{"name": "a", "gate": "g", "namespaces": ["x"]}], "cache": {"ttl": "soon"}}`, "duration"},
		{"duration not a string", `{"rules": [{"name": "a", "gate": "g", "namespaces": ["x"]}], "cache": {"ttl": 300}}`, "duration"},
		{"negative size", `{"rules": [{"name": "a", "gate": "g", "namespaces": ["x"]}], "cache": {"size": -1}}`, "size"},
		{"bad annotation", `{"rules": [{"name": "a", "gate": "g", "namespaces": ["x"]}], "breakGlass": {"enabled": true, "annotation": "no spaces allowed"}}`, "annotation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.cfg))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.want)
			}
		})
	}
}

// Each rule becomes one webhook whose namespace selector is the rule's,
// with the named namespaces as a requirement on kubernetes.io/metadata.name
// and excluded namespaces left out.
func TestWebhooksRendering(t *testing.T) {
	c, err := ParseConfig([]byte(`{"rules": [
		{"name": "prod", "gate": "production", "namespaceSelector": {"matchLabels": {"quorate.dev/gate": "production"}}},
		{"name": "payments", "gate": "production", "namespaces": ["payments", "billing"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	whs := c.Webhooks(Service{Namespace: "quorate-system", Name: "quorate-admission", Port: 443}, []byte("CA"))
	if len(whs) != 2 {
		t.Fatalf("%d webhooks", len(whs))
	}
	p := whs[1]
	if p.Name != "payments.admission.quorate.dev" || *p.ClientConfig.Service.Path != "/validate/payments" ||
		*p.FailurePolicy != admissionregistrationv1.Fail || *p.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Fatalf("webhook %+v", p)
	}
	want := []metav1.LabelSelectorRequirement{
		{Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"payments", "billing"}},
		{Key: ExcludeLabel, Operator: metav1.LabelSelectorOpDoesNotExist},
	}
	got, _ := json.Marshal(p.NamespaceSelector.MatchExpressions)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Fatalf("selector %s, want %s", got, wantJSON)
	}
	if c.Rules[1].NamespaceSelector != nil {
		t.Fatal("rendering changed the configuration")
	}
}

// The example configuration in examples/kubernetes parses, and the example
// webhook configuration is exactly what Config.Webhooks renders for it.
func TestExampleConfig(t *testing.T) {
	dir := filepath.Join("..", "examples", "kubernetes")
	data, err := os.ReadFile(filepath.Join(dir, "admission-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatalf("example configuration: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(raw, &vwc); err != nil {
		t.Fatalf("webhook.yaml: %v", err)
	}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].ClientConfig.CABundle = nil
	}
	got, _ := json.MarshalIndent(vwc.Webhooks, "", "  ")
	want, _ := json.MarshalIndent(c.Webhooks(Service{Namespace: "quorate-system", Name: "quorate-admission", Port: 443}, nil), "", "  ")
	if string(got) != string(want) {
		t.Fatalf("webhook.yaml is out of sync with admission-config.json and Config.Webhooks:\n got %s\nwant %s", got, want)
	}
}

func TestVerdictCacheBounds(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := newVerdictCache(2, func() time.Time { return now })
	k := func(d string) cacheKey { return cacheKey{"r", d, "g"} }
	c.put(k("a"), Decision{Allowed: true}, time.Minute)
	c.put(k("b"), Decision{Allowed: true}, time.Minute)
	c.get(k("a")) // a is now the most recently used
	c.put(k("c"), Decision{Allowed: true}, time.Minute)
	if _, ok := c.get(k("b")); ok {
		t.Fatal("least recently used entry kept past the size bound")
	}
	if _, ok := c.get(k("a")); !ok {
		t.Fatal("recently used entry evicted")
	}
	if c.len() != 2 {
		t.Fatalf("len %d", c.len())
	}
	// An approval expiring sooner than the TTL is kept only until then.
	c.put(k("d"), Decision{Allowed: true, ValidUntil: now.Add(10 * time.Second)}, time.Minute)
	now = now.Add(11 * time.Second)
	if _, ok := c.get(k("d")); ok {
		t.Fatal("served past the approval's expiry")
	}
	// Already expired: not stored.
	c.put(k("e"), Decision{Allowed: true, ValidUntil: now.Add(-time.Second)}, time.Minute)
	if _, ok := c.get(k("e")); ok {
		t.Fatal("expired approval cached")
	}
	now = now.Add(time.Minute)
	if _, ok := c.get(k("a")); ok {
		t.Fatal("served past the TTL")
	}
}
