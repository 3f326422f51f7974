package examples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/internal/citest"
	"github.com/quorate-dev/quorate/notify"
)

// TestMonitoringRules runs `promtool check rules` and the rules' unit tests
// on examples/monitoring. promtool comes from Debian's prometheus package
// (scripts/promtool.sh install, in make deps); under CI=1 its absence fails.
func TestMonitoringRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		citest.SkipOrFail(t, "promtool", "promtool is not installed (scripts/promtool.sh install)")
	}
	dir := script("monitoring")
	for _, args := range [][]string{{"check", "rules", "quorate-alerts.yml"}, {"test", "rules", "quorate-alerts.test.yml"}} {
		out, code := run(t, dir, nil, promtool, args...)
		if code != 0 || !strings.Contains(out, "SUCCESS") {
			t.Errorf("promtool %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
}

// TestMonitoringMetricNames compares every metric name the alerting rules
// and the Grafana dashboard use with the names a real coordinator exposes
// on /metrics (quorate serve with --webhooks, started here).
func TestMonitoringMetricNames(t *testing.T) {
	exposed := coordinatorMetricNames(t)
	// Series Prometheus makes itself, not the coordinator.
	exposed["up"] = true

	metricRE := regexp.MustCompile(`\b(?:quorate|go|process)_[a-z0-9_]+\b|\bup\b`)
	used := map[string][]string{}
	rules, err := os.ReadFile(script("monitoring", "quorate-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "expr:") || (!strings.Contains(l, ":") && !strings.HasPrefix(l, "#") && l != "") {
			for _, n := range metricRE.FindAllString(l, -1) {
				used[n] = append(used[n], "quorate-alerts.yml")
			}
		}
	}
	for _, e := range dashboardExprs(t) {
		for _, n := range metricRE.FindAllString(e, -1) {
			used[n] = append(used[n], "quorate-dashboard.json")
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d metric names in the rules and dashboard: %v", len(used), used)
	}
	for name, where := range used {
		if !exposed[name] {
			t.Errorf("%s (used in %s) is not a registered metric", name, strings.Join(slices.Compact(where), ", "))
		}
	}
}

// dashboardExprs returns every target expression of the dashboard and
// checks its panels have the fields Grafana needs.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(script("monitoring", "quorate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatal("dashboard lacks title, uid or panels")
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %q (%s) has no title or no targets", p.Title, p.Type)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// addNames adds the metric names of a /metrics page (text format): each
// family from its "# TYPE" line, with the _bucket, _sum and _count series
// of histograms and summaries.
func addNames(set map[string]bool, page string) {
	for _, line := range strings.Split(page, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		set[f[2]] = true
		switch f[3] {
		case "histogram":
			set[f[2]+"_bucket"], set[f[2]+"_sum"], set[f[2]+"_count"] = true, true, true
		case "summary":
			set[f[2]+"_sum"], set[f[2]+"_count"] = true, true
		}
	}
}

// coordinatorMetricNames builds a trust directory with the quorate CLI,
// starts `quorate serve` on loopback, has it refuse one signature (so the
// refusals-by-reason vector has a child), and reads /metrics.
func coordinatorMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	q := func(args ...string) {
		t.Helper()
		if out, code := run(t, dir, nil, quorateBin, args...); code != 0 {
			t.Fatalf("quorate %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	for _, k := range []string{"admin", "dev", "log"} {
		q("keys", "generate", "--key", "file:"+k+".key")
	}
	q("policy", "init", "--trust", "trust", "--admin", "admin.key.pub", "--admin-threshold", "1")
	q("policy", "role", "--trust", "trust", "--role", "originator", "--key", "dev.key.pub")
	q("policy", "gate", "--trust", "trust", "--gate", "release", "--roles", "originator")
	q("policy", "log-key", "--trust", "trust", "--key", "log.key.pub", "--origin", "monitoring.example/log")
	q("policy", "sign", "--trust", "trust", "--key", "file:admin.key")

	addrFile := filepath.Join(dir, "addr")
	var logBuf bytes.Buffer
	// Webhooks to a closed loopback port: the dispatcher's metrics are on
	// /metrics from the start.
	secret, err := notify.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hook.whsec"), []byte(secret.Text()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "webhooks.json"), []byte(`{"endpoints": [{"name": "ops", "url": "http://127.0.0.1:9/hook", "secret": {"file": "hook.whsec"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(quorateBin, "serve", "--trust", "trust", "--data", "db", "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--log-key", "file:log.key", "--log-level", "warn", "--webhooks", "webhooks.json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "xdg-state"))
	cmd.Stderr = &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == ""; {
		if b, err := os.ReadFile(addrFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			base = "http://" + string(bytes.TrimSpace(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coordinator did not start:\n%s", logBuf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sig := fmt.Sprintf(`{"keyid":%q,"sig":"AAAA"}`, strings.Repeat("0", 64))
	resp, err := http.Post(base+"/v1/requests/no-such-request/signatures", "application/json", strings.NewReader(sig))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("a signature for no request was accepted: %s", resp.Status)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	names := map[string]bool{}
	addNames(names, string(page))
	if !names["quorate_partial_signatures_rejected_total"] {
		t.Fatalf("the refused signature did not show on /metrics:\n%s", logBuf.String())
	}
	return names
}
