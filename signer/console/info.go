package console

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
)

func sortedKeyIDs(t *policy.Trust) []string {
	ids := make([]string, 0, len(t.Roles.Keys))
	for id := range t.Roles.Keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

type versionView struct {
	Version int64
	Digest  string
	// Diff is what changed from the version before, when the trust
	// directory holds both (author.Diff, as administrators review it).
	Diff []string
}

// maxDiffs bounds the versions whose diff the policy page computes.
const maxDiffs = 20

// diffFrom describes what version v changed from v-1, reading both from
// src; nil when either is not there.
func diffFrom(src policy.Source, v int64) []string {
	if src == nil || v < 2 {
		return nil
	}
	read := func(v int64) *metadata.Metadata[metadata.TargetsType] {
		data, err := src.Targets(v)
		if err != nil {
			return nil
		}
		t, err := policy.ParseTargets(data)
		if err != nil {
			return nil
		}
		return t
	}
	old, next := read(v-1), read(v)
	if old == nil || next == nil {
		return nil
	}
	lines, err := author.Diff(old, next)
	if err != nil {
		return []string{"(cannot compare: " + display.String(err.Error()) + ")"}
	}
	for i, l := range lines {
		lines[i] = display.String(l)
	}
	return lines
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, _ *session) {
	t := c.svc.Trust()
	d := map[string]any{"Version": t.Version(), "Digest": t.Digest, "Expires": t.Targets.Signed.Expires,
		"RootVersion": t.Root.Signed.Version, "RootExpires": t.Root.Signed.Expires}
	var rolesV []roleView
	for _, name := range t.Roles.RoleNames() {
		role := t.Roles.Roles[name]
		rv := roleView{Name: name, Threshold: role.Threshold}
		for _, id := range role.KeyIDs {
			if k := t.Roles.Keys[id]; k != nil {
				rv.Keys = append(rv.Keys, namedKey(keyView{ID: id, Type: describeKey(k), Status: keyStatus(t, k)}, t.KeyNames))
			}
		}
		for _, idn := range role.Identities {
			rv.Others = append(rv.Others, display.String(fmt.Sprintf("%v", idn)))
		}
		rolesV = append(rolesV, rv)
	}
	d["Roles"] = rolesV
	type gateView struct {
		Name       string
		Roles      []string
		Provenance string
	}
	var gates []gateView
	for _, g := range t.Roles.GateNames() {
		gv := gateView{Name: g, Roles: t.Roles.Gates[g].Roles}
		if req, ok := t.ProvenanceRequirements(g); ok {
			gv.Provenance = display.String(author.DescribeRequirements(req))
		}
		gates = append(gates, gv)
	}
	d["Gates"] = gates
	if lc := t.Lifecycle; lc != nil {
		hist := []versionView{{Version: t.Version(), Digest: t.Digest}}
		versions := lc.Versions()
		for i := len(versions) - 1; i >= 0; i-- {
			hist = append(hist, versionView{Version: versions[i], Digest: lc.History[versions[i]]})
		}
		for i := range hist[:min(len(hist), maxDiffs)] {
			hist[i].Diff = diffFrom(t.Source(), hist[i].Version)
		}
		d["History"], d["Retired"], d["Revocations"] = hist, lc.Retired, lc.Revocations
		d["Names"] = escapedNames(t.KeyNames)
	}
	c.render(w, r, "policy", http.StatusOK, d)
}

func (c *Console) logPage(w http.ResponseWriter, r *http.Request, _ *session) {
	d := map[string]any{"Ledger": c.svc.Ledger() != nil}
	if c.svc.Ledger() != nil {
		size, note, err := c.svc.Ledger().Checkpoint(r.Context(), 0)
		if err != nil {
			d["Error"] = display.String(err.Error())
		} else {
			d["Size"], d["Note"] = size, display.String(string(note))
			var lines []string
			for _, l := range splitLines(string(note)) {
				lines = append(lines, display.String(l))
			}
			d["Lines"] = lines
		}
		if f := c.svc.Ledger().Fault(); f != nil {
			d["Fault"] = display.String(f.Error())
		}
	}
	server := c.cfg.AuditServer
	if server == "" {
		server = origin(r)
	}
	d["Audit"] = "quorate log verify --coordinator " + server + " --trust TRUST_DIR"
	c.render(w, r, "log", http.StatusOK, d)
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}

type counterView struct {
	Label string
	Value float64
}

// activity shows the coordinator's own Prometheus counters (as /metrics
// serves them, since this process started) and, from the stored requests,
// signatures per role over the last day and week.
func (c *Console) activity(w http.ResponseWriter, r *http.Request, _ *session) {
	d := map[string]any{}
	if c.cfg.Gatherer != nil {
		fams, err := c.cfg.Gatherer.Gather()
		if err != nil {
			d["Error"] = display.String(err.Error())
		}
		var rejected []counterView
		for _, f := range fams {
			switch f.GetName() {
			case "quorate_requests_opened_total":
				d["Opened"] = sum(f)
			case "quorate_partial_signatures_accepted_total":
				d["Accepted"] = sum(f)
			case "quorate_composites_emitted_total":
				d["Emitted"] = sum(f)
			case "quorate_requests_pending":
				d["Pending"] = sum(f)
			case "quorate_partial_signatures_rejected_total":
				for _, m := range f.GetMetric() {
					rejected = append(rejected, counterView{Label: display.String(label(m, "reason")), Value: m.GetCounter().GetValue()})
				}
			case "quorate_request_time_to_threshold_seconds":
				if ms := f.GetMetric(); len(ms) > 0 && ms[0].GetHistogram().GetSampleCount() > 0 {
					h := ms[0].GetHistogram()
					d["TTTCount"] = h.GetSampleCount()
					d["TTTMean"] = (time.Duration(h.GetSampleSum()/float64(h.GetSampleCount())*1e9) / time.Second * time.Second).String()
					d["TTTMedian"] = quantile(h, 0.5)
					d["TTT90"] = quantile(h, 0.9)
				}
			}
		}
		sort.Slice(rejected, func(i, j int) bool { return rejected[i].Label < rejected[j].Label })
		d["Rejected"] = rejected
		d["Metrics"] = true
	}
	now := c.cfg.Clock()
	perRole := map[string][2]int{}
	var tttDay, tttWeek []time.Duration // time to threshold of requests completed in the window
	for _, st := range []signer.State{signer.Pending, signer.Complete, signer.Cancelled, signer.Expired, signer.Superseded} {
		reqs, err := c.svc.List(r.Context(), signer.ListOptions{State: st, Summary: true, Limit: 1000})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, q := range reqs {
			if q.State == signer.Complete {
				took := q.Updated.Sub(q.Created)
				if now.Sub(q.Updated) <= 24*time.Hour {
					tttDay = append(tttDay, took)
				}
				if now.Sub(q.Updated) <= 7*24*time.Hour {
					tttWeek = append(tttWeek, took)
				}
			}
			for _, p := range q.Signatures {
				n := perRole[p.Role]
				if now.Sub(p.Received) <= 24*time.Hour {
					n[0]++
				}
				if now.Sub(p.Received) <= 7*24*time.Hour {
					n[1]++
				}
				perRole[p.Role] = n
			}
		}
	}
	type roleCount struct {
		Role      string
		Day, Week int
	}
	var rc []roleCount
	for _, role := range slices.Sorted(func(yield func(string) bool) {
		for k := range perRole {
			if !yield(k) {
				return
			}
		}
	}) {
		rc = append(rc, roleCount{Role: display.String(role), Day: perRole[role][0], Week: perRole[role][1]})
	}
	d["PerRole"] = rc
	d["Windows"] = []windowView{window("last 24 hours", tttDay), window("last 7 days", tttWeek)}
	c.render(w, r, "activity", http.StatusOK, d)
}

func sum(f *dto.MetricFamily) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			s += m.GetCounter().GetValue()
		case m.Gauge != nil:
			s += m.GetGauge().GetValue()
		}
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile is the upper bound of the histogram bucket holding quantile q.
func quantile(h *dto.Histogram, q float64) string {
	want := uint64(math.Ceil(q * float64(h.GetSampleCount())))
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() >= want {
			return "≤ " + (time.Duration(b.GetUpperBound()) * time.Second).String()
		}
	}
	return "> largest bucket"
}

// windowView summarizes the time to threshold of the requests completed in
// a window.
type windowView struct {
	Name            string
	Count           int
	Median, Slowest string
}

func window(name string, ds []time.Duration) windowView {
	w := windowView{Name: name, Count: len(ds)}
	if len(ds) == 0 {
		return w
	}
	slices.Sort(ds)
	w.Median, w.Slowest = ds[len(ds)/2].Round(time.Second).String(), ds[len(ds)-1].Round(time.Second).String()
	return w
}

// escapedNames is names with every name and owner escaped for display.
func escapedNames(names policy.KeyNames) policy.KeyNames {
	out := policy.KeyNames{}
	for id, n := range names {
		out[id] = policy.KeyName{Name: display.String(n.Name), Owner: display.String(n.Owner)}
	}
	return out
}
