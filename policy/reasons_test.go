package policy_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/policy"
)

// TestVerdictKinds: every way a verdict fails carries a typed reason, so
// errors.Is(v.Err(), kind) works and the reason's code is the kind's
// stable machine code (what `quorate verify --output json` prints).
func TestVerdictKinds(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	orig, integ, oper := f.role("originator").Signers, f.role("integrator").Signers, f.role("operator").Signers
	outsider := p256(t, 1)[0]
	good := f.statement(t, "production", nil)
	tests := []struct {
		name string
		env  func(t *testing.T) []byte
		req  func(r *policy.Request)
		opts []policy.VerifyOption
		want *policy.Kind
		code string
	}{
		{name: "expired attestation", env: func(t *testing.T) []byte { return f.approved(t, "production") },
			req: func(r *policy.Request) { r.Now = epoch.Add(48 * time.Hour) }, want: policy.ErrExpired, code: "expired"},
		{name: "another gate", env: func(t *testing.T) []byte { return f.approved(t, "staging") },
			want: policy.ErrWrongGate, code: "wrong_gate"},
		{name: "unknown gate", env: func(t *testing.T) []byte { return f.approved(t, "production") },
			req: func(r *policy.Request) { r.Gate = "canary" }, want: policy.ErrUnknownGate, code: "unknown_gate"},
		{name: "another artifact", env: func(t *testing.T) []byte { return f.approved(t, "production") },
			req: func(r *policy.Request) {
				r.Artifacts = []policy.Artifact{{Name: "other", Digests: []attest.Digest{{Alg: "sha256", Hex: "00"}}}}
			}, want: policy.ErrSubjectMismatch, code: "subject_mismatch"},
		{name: "threshold not met", env: func(t *testing.T) []byte {
			return encode(t, signEnvelope(t, good, orig[0], integ[0], oper[0]))
		}, want: policy.ErrThresholdNotMet, code: "threshold_not_met"},
		{name: "key not in policy", env: func(t *testing.T) []byte {
			return encode(t, signEnvelope(t, good, orig[0], integ[0], oper[0], outsider))
		}, want: policy.ErrNotInPolicy, code: "not_in_policy"},
		{name: "bad signature", env: func(t *testing.T) []byte {
			env := signEnvelope(t, good, orig[0], integ[0], oper[0], oper[1])
			env.Signatures = append(env.Signatures, rawSignature(t, integ[1], good))
			return encode(t, env)
		}, want: policy.ErrBadSignature, code: "bad_signature"},
		{name: "malformed envelope", env: func(t *testing.T) []byte { return []byte(`{"payload":`) },
			want: policy.ErrMalformedAttestation, code: "malformed"},
		{name: "ledger required, no bundle", env: func(t *testing.T) []byte { return f.approved(t, "production") },
			opts: []policy.VerifyOption{policy.RequireLedger()}, want: policy.ErrNotLogged, code: "not_logged"},
		{name: "ledger required, bundle does not verify", env: func(t *testing.T) []byte { return f.approved(t, "production") },
			opts: []policy.VerifyOption{policy.WithLedgerBundle([]byte(`{}`)), policy.RequireLedger()}, want: policy.ErrBadLedgerBundle, code: "bad_ledger_bundle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request("production")
			if tc.req != nil {
				tc.req(&req)
			}
			v := f.Trust.VerifyBytes(tc.env(t), req, tc.opts...)
			if v.Verified {
				t.Fatal("verified")
			}
			if !errors.Is(v.Err(), tc.want) {
				t.Fatalf("errors.Is(v.Err(), %s) is false: %v", tc.code, v.Err())
			}
			if tc.want.Code() != tc.code || policy.CodeOf(tc.want) != tc.code {
				t.Fatalf("kind code %q, want %q", tc.want.Code(), tc.code)
			}
			found := false
			for _, r := range v.Reasons {
				found = found || r.Code == tc.code
			}
			if !found {
				t.Fatalf("no reason with code %q: %+v", tc.code, v.Reasons)
			}
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Reasons []struct{ Code, Message string }
			}
			if err := json.Unmarshal(data, &back); err != nil || len(back.Reasons) != len(v.Reasons) || back.Reasons[0].Code == "" || back.Reasons[0].Message == "" {
				t.Fatalf("JSON reasons %s: %v", data, err)
			}
		})
	}
}

// TestLedgerBundleWarning: without RequireLedger, a bundle that does not
// verify is a warning inside the verdict, and verification proceeds.
func TestLedgerBundleWarning(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	for _, bundle := range [][]byte{nil, {}, []byte(`{"not":"a bundle"}`)} {
		v := f.Trust.VerifyBytes(f.approved(t, "production"), request("production"), policy.WithLedgerBundle(bundle))
		if !v.Verified || len(v.Warnings) != 1 || v.Warnings[0].Code != "bad_ledger_bundle" || !errors.Is(v.Warnings[0], policy.ErrBadLedgerBundle) {
			t.Fatalf("bundle %q: verified=%v warnings=%+v", bundle, v.Verified, v.Warnings)
		}
	}
}

// TestHistoryIsExplicit: an attestation signed under an earlier policy
// version verifies only when the caller passes where to read that version
// (WithHistory); verification does no hidden I/O.
func TestHistoryIsExplicit(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	att, d1 := f.approved(t, "production"), f.Trust.Digest
	f.bump(t)
	v := f.Trust.VerifyBytes(att, request("production"))
	if v.Verified || !errors.Is(v.Err(), policy.ErrPolicyMismatch) || !errors.Is(v.Err(), policy.ErrHistoryMissing) {
		t.Fatalf("without history: verified=%v err=%v; want ErrPolicyMismatch and ErrHistoryMissing", v.Verified, v.Err())
	}
	if v := f.Trust.VerifyBytes(att, request("production"), policy.WithHistory(f.Trust.Source())); !v.Verified || v.PolicyVersion != 1 {
		t.Fatalf("with history: verified=%v policy v%d: %v", v.Verified, v.PolicyVersion, v.Err())
	}
	if _, err := f.Trust.PolicyAt(nil, 1, d1); !errors.Is(err, policy.ErrHistoryMissing) {
		t.Fatalf("PolicyAt without a source: %v", err)
	}
}
