package admission

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorate-dev/quorate/internal/strictjson"
)

// ErrConfig marks an admission configuration that cannot be used.
var ErrConfig = errors.New("admission configuration")

// Mode says what a refusal does.
type Mode string

const (
	// Enforce denies a workload with an image that is not approved.
	Enforce Mode = "enforce"
	// Audit admits it, with a warning to the client and a count
	// ([MetricImageDenials] with mode="audit").
	Audit Mode = "audit"
)

// NamespaceNameLabel is the label the API server sets on every namespace
// (Kubernetes 1.22 and later) to the namespace's name; [Rule.Namespaces] is
// rendered as a selector on it.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// DefaultBreakGlassAnnotation is the annotation that admits a workload
// without verification when break-glass is enabled.
const DefaultBreakGlassAnnotation = "quorate.dev/break-glass"

// Config is the admission configuration file (JSON, decoded strictly:
// unknown fields and duplicate keys are refused). See docs/kubernetes.md.
type Config struct {
	// Mode is "enforce" (the default) or "audit".
	Mode Mode `json:"mode,omitempty"`
	// Rules map namespaces to gates; see [Rule].
	Rules []Rule `json:"rules"`
	// BreakGlass is off unless enabled.
	BreakGlass BreakGlass `json:"breakGlass"`
	// Cache bounds the verdict cache.
	Cache CacheConfig `json:"cache"`
}

// Rule maps the namespaces it selects to a gate. Each rule is one webhook
// of the ValidatingWebhookConfiguration ([Config.Webhooks]), served at
// /validate/<name>: the API server, which knows the namespaces' labels,
// evaluates the selector and calls the rule's path. The webhook itself only
// sees the namespace's name, so it re-checks [Rule.Namespaces] (a request
// for a namespace not listed is denied: the cluster's configuration is out
// of sync with this file) but trusts the API server for label selectors.
type Rule struct {
	// Name is the rule's name: lowercase letters, digits and '-', at most
	// 40 characters. It is the path /validate/<name> and part of the
	// webhook's name.
	Name string `json:"name"`
	// Gate is the policy gate the namespaces' images must satisfy.
	Gate string `json:"gate"`
	// Namespaces, when not empty, limits the rule to these namespaces.
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector, when set, limits the rule to namespaces whose
	// labels match (Kubernetes label selector syntax).
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// BreakGlass configures the break-glass annotation. It is an operator's
// decision to enable it: whoever may create a workload in a namespace may
// then run an unapproved image there (each use is reported).
type BreakGlass struct {
	Enabled bool `json:"enabled"`
	// Annotation defaults to [DefaultBreakGlassAnnotation]. Its value is the
	// justification and must not be empty.
	Annotation string `json:"annotation,omitempty"`
}

// CacheConfig bounds the verdict cache.
type CacheConfig struct {
	// Size is the number of verdicts kept (default 4096).
	Size int `json:"size,omitempty"`
	// TTL is how long an approval is reused (default "5m"); DenyTTL how
	// long a refusal is (default "30s", so an approval attached after a
	// refusal is seen soon).
	TTL     Duration `json:"ttl,omitempty"`
	DenyTTL Duration `json:"denyTTL,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("5m").
type Duration time.Duration

// UnmarshalJSON reads "5m", "30s", ….
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := strictjson.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

var (
	ruleName  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	nsName    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	gateName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	annotName = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
)

// ParseConfig decodes and checks a configuration file, filling defaults.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	if err := strictjson.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &c, nil
}

// check validates c and fills defaults.
func (c *Config) check() error {
	switch c.Mode {
	case "":
		c.Mode = Enforce
	case Enforce, Audit:
	default:
		return fmt.Errorf("mode %q: want %q or %q", c.Mode, Enforce, Audit)
	}
	if len(c.Rules) == 0 {
		return errors.New("no rules: map at least one set of namespaces to a gate")
	}
	seen := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if err := r.check(); err != nil {
			return fmt.Errorf("rule #%d (%q): %w", i+1, r.Name, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("rule %q: name used twice", r.Name)
		}
		seen[r.Name] = true
	}
	if c.BreakGlass.Annotation == "" {
		c.BreakGlass.Annotation = DefaultBreakGlassAnnotation
	}
	if !annotName.MatchString(c.BreakGlass.Annotation) {
		return fmt.Errorf("breakGlass.annotation %q is not an annotation key", c.BreakGlass.Annotation)
	}
	if c.Cache.Size < 0 {
		return fmt.Errorf("cache.size %d is negative", c.Cache.Size)
	}
	if c.Cache.Size == 0 {
		c.Cache.Size = 4096
	}
	if c.Cache.TTL == 0 {
		c.Cache.TTL = Duration(5 * time.Minute)
	}
	if c.Cache.DenyTTL == 0 {
		c.Cache.DenyTTL = Duration(30 * time.Second)
	}
	return nil
}

func (r *Rule) check() error {
	if !ruleName.MatchString(r.Name) {
		return errors.New("name: want 1-40 lowercase letters, digits or '-', starting and ending with a letter or digit")
	}
	if !gateName.MatchString(r.Gate) {
		return fmt.Errorf("gate %q: want letters, digits, '.', '_' or '-'", r.Gate)
	}
	if len(r.Namespaces) == 0 && r.NamespaceSelector == nil {
		return errors.New("neither namespaces nor namespaceSelector: a rule for every namespace must say so with an empty namespaceSelector ({})")
	}
	for _, ns := range r.Namespaces {
		if !nsName.MatchString(ns) {
			return fmt.Errorf("namespace %q is not a namespace name", ns)
		}
	}
	if r.NamespaceSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(r.NamespaceSelector); err != nil {
			return fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	return nil
}

// selector returns the namespace selector the API server evaluates for r:
// NamespaceSelector, with Namespaces added as a requirement on
// [NamespaceNameLabel].
func (r *Rule) selector() *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	if r.NamespaceSelector != nil {
		s = r.NamespaceSelector.DeepCopy()
	}
	if len(r.Namespaces) > 0 {
		s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: slices.Clone(r.Namespaces),
		})
	}
	return s
}

// rule returns the rule named name.
func (c *Config) rule(name string) (*Rule, bool) {
	for i := range c.Rules {
		if c.Rules[i].Name == name {
			return &c.Rules[i], true
		}
	}
	return nil, false
}
