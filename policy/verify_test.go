package policy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// requireVerified fails the test unless v is verified.
func requireVerified(tb testing.TB, v *policy.Verdict) {
	tb.Helper()
	if !v.Verified || v.Err() != nil || len(v.Reasons) > 0 {
		tb.Fatalf("not verified: %v", v.Err())
	}
}

// requireReasons fails the test unless v is not verified and every want is
// part of some reason.
func requireReasons(tb testing.TB, v *policy.Verdict, want ...string) {
	tb.Helper()
	if v.Verified || v.Err() == nil {
		tb.Fatalf("verified, want a rejection naming %q", want)
	}
	for _, w := range want {
		found := false
		for _, r := range v.Reasons {
			if strings.Contains(r.Message, w) {
				found = true
				break
			}
		}
		if !found {
			tb.Errorf("no reason mentions %q; reasons:\n  %v", w, v.Err())
		}
	}
}

func TestVerifyAcceptsApproval(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	for _, gate := range []string{"production", "staging"} {
		t.Run(gate, func(t *testing.T) {
			v := f.Trust.VerifyBytes(f.approved(t, gate), request(gate))
			requireVerified(t, v)
			if len(v.Roles) != len(f.Gates[gate]) {
				t.Fatalf("%d role verdicts, want %d", len(v.Roles), len(f.Gates[gate]))
			}
			for _, r := range v.Roles {
				spec := f.role(r.Role)
				if !r.Met || len(r.Keys) != spec.Threshold || r.Threshold != spec.Threshold {
					t.Errorf("role %s: met=%v, %d keys, threshold %d; want %d of %d", r.Role, r.Met, len(r.Keys), r.Threshold, spec.Threshold, spec.Threshold)
				}
				for i, k := range r.Keys {
					if k.KeyID != spec.Signers[i].Public().ID() {
						t.Errorf("role %s counted key %s, want %s", r.Role, k.KeyID, spec.Signers[i].Public().ID())
					}
				}
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	integ, oper, orig := f.role("integrator").Signers, f.role("operator").Signers, f.role("originator").Signers
	good := f.statement(t, "production", nil)

	// Policy with one integrator key under two key IDs.
	aliased := p256(t, 2)
	twoIDs := newFixture(t, []roleSpec{
		{Name: "originator", Signers: p256(t, 1), Threshold: 1},
		{Name: "integrator", Signers: []signer{aliased[0], aliasOf(t, aliased[0]), aliased[1]}, Threshold: 2},
		{Name: "operator", Signers: p256(t, 1), Threshold: 1},
	})

	// Policy at version 2, and an approval made under its version 1.
	v2 := newFixture(t, defaultRoles(t))
	v1Approval := signEnvelope(t, v2.statement(t, "production", nil), v2.approvers("production")...)
	v2.bump(t)
	// From root.json and targets.json alone: no history to read version 1 from.
	var err error
	if v2.Trust, err = policy.LoadBytes(v2.Root, v2.Targets, policy.LoadOptions{Now: epoch}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		trust *fixture
		env   func(t *testing.T) []byte
		req   func(r *policy.Request)
		want  []string
	}{
		{
			name: "duplicate signatures by one key",
			env: func(t *testing.T) []byte {
				env := signEnvelope(t, good, orig[0], integ[0], oper[0], oper[1])
				sig := rawSignature(t, integ[0], mustPAE(t, env)) // a second, different, valid signature by integ[0]
				env.Signatures = append(env.Signatures, sig)
				return encode(t, env)
			},
			want: []string{`role "integrator": 1 of 2`, "signed more than once"},
		},
		{
			name:  "one key under two key IDs",
			trust: twoIDs,
			env: func(t *testing.T) []byte {
				it := twoIDs.role("integrator").Signers
				return encode(t, signEnvelope(t, twoIDs.statement(t, "production", nil), twoIDs.role("originator").Signers[0], it[0], it[1], twoIDs.role("operator").Signers[0]))
			},
			want: []string{`role "integrator": 1 of 2`, "is the same public key as"},
		},
		{
			name: "key of another role of the gate counted for integrator",
			env: func(t *testing.T) []byte {
				// The second originator key stands in for the missing integrator.
				return encode(t, signEnvelope(t, good, orig[0], orig[1], integ[0], oper[0], oper[1]))
			},
			want: []string{`role "integrator": 1 of 2`},
		},
		{
			name: "key of a role the gate does not need",
			env: func(t *testing.T) []byte {
				return encode(t, signEnvelope(t, f.statement(t, "staging", nil), orig[0], integ[0], oper[0]))
			},
			req:  func(r *policy.Request) { r.Gate = "staging" },
			want: []string{`role "integrator": 1 of 2`, `belongs to role operator, which gate "staging" does not need`},
		},
		{
			name: "key outside the policy",
			env: func(t *testing.T) []byte {
				return encode(t, signEnvelope(t, good, orig[0], integ[0], testkeys.Signer(t, hsm.ECDSAP256), oper[0], oper[1]))
			},
			want: []string{`role "integrator": 1 of 2`, "key is not in the policy"},
		},
		{
			name: "signature over the raw payload instead of the PAE",
			env: func(t *testing.T) []byte {
				env := signEnvelope(t, good, orig[0], integ[0], oper[0], oper[1])
				env.Signatures = append(env.Signatures, rawSignature(t, integ[1], good))
				return encode(t, env)
			},
			want: []string{`role "integrator": 1 of 2`, "signature does not verify over the envelope's PAE"},
		},
		{
			name: "changed payloadType",
			env: func(t *testing.T) []byte {
				env := signEnvelope(t, good, f.approvers("production")...)
				env.PayloadType = "application/json"
				return encode(t, env)
			},
			want: []string{`payloadType "application/json" is not "application/vnd.in-toto+json"`, `role "originator": 0 of 1`, "does not verify over the envelope's PAE"},
		},
		{
			name: "payload is not an in-toto Statement",
			env: func(t *testing.T) []byte {
				return encode(t, signEnvelope(t, []byte(`{"hello":"world"}`), f.approvers("production")...))
			},
			want: []string{`payload _type "" is not an in-toto Statement v1`},
		},
		{
			name: "payload is not JSON",
			env: func(t *testing.T) []byte {
				return encode(t, signEnvelope(t, []byte("release 1.2.3 approved"), f.approvers("production")...))
			},
			want: []string{"malformed attestation: statement: invalid JSON"},
		},
		{
			name: "other predicate type",
			env: func(t *testing.T) []byte {
				st := rawStatement(t, []attest.Subject{artifactSubject()}, attest.SLSAProvenance, f.predicate("production"))
				return encode(t, signEnvelope(t, st, f.approvers("production")...))
			},
			want: []string{`predicateType "https://slsa.dev/provenance/v1" is not quorate's release approval`},
		},
		{
			name: "subject digest mismatch",
			env:  func(t *testing.T) []byte { return f.approved(t, "production") },
			req: func(r *policy.Request) {
				r.Artifacts[0].Digests[0].Hex = strings.Repeat("ab", 32)
			},
			want: []string{`artifact "app.tar.gz" (sha256:abab`, "matches no subject of the attestation"},
		},
		{
			name: "sha512 of another artifact",
			env:  func(t *testing.T) []byte { return f.approved(t, "production") },
			req: func(r *policy.Request) {
				r.Artifacts[0].Digests = append(r.Artifacts[0].Digests, attest.Digest{Alg: "sha512", Hex: strings.Repeat("cd", 64)})
			},
			want: []string{"matches no subject of the attestation"},
		},
		{
			name: "no artifact to check",
			env:  func(t *testing.T) []byte { return f.approved(t, "production") },
			req:  func(r *policy.Request) { r.Artifacts = nil },
			want: []string{"no artifact or digest given"},
		},
		{
			name: "md5 digest only",
			env:  weakSubject(f, map[string]string{"md5": "d41d8cd98f00b204e9800998ecf8427e"}),
			want: []string{"only weak or unknown digests (md5); sha256 or sha512 is required"},
		},
		{
			name: "sha1 digest only",
			env:  weakSubject(f, map[string]string{"sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}),
			want: []string{"only weak or unknown digests (sha1)"},
		},
		{
			name: "no digests",
			env:  weakSubject(f, map[string]string{}),
			want: []string{"no digests"},
		},
		{
			name: "truncated sha256",
			env:  weakSubject(f, map[string]string{"sha256": "abcd"}),
			want: []string{"sha256 digest is not 64 lower-case hex digits"},
		},
		{
			name: "expired attestation",
			env: func(t *testing.T) []byte {
				st := f.statement(t, "production", func(p *attest.Predicate) { p.Expires = epoch.Add(30 * time.Minute) })
				return encode(t, signEnvelope(t, st, f.approvers("production")...))
			},
			want: []string{"attestation expired at 2030-01-02T03:34:05Z"},
		},
		{
			name: "expired policy",
			env:  func(t *testing.T) []byte { return f.approved(t, "production") },
			req:  func(r *policy.Request) { r.Now = epoch.Add(author.DefaultTargetsExpiry + time.Hour) },
			want: []string{"policy version", "expired at"},
		},
		{
			name:  "approval under an older version whose history is not available",
			trust: v2,
			env:   func(t *testing.T) []byte { return encode(t, v1Approval) },
			want:  []string{"signed under policy version 1, which the trusted policy version 2 does not vouch for", "history/targets.1.json) is missing"},
		},
		{
			name: "approval under a newer policy version",
			env: func(t *testing.T) []byte {
				st := f.statement(t, "production", func(p *attest.Predicate) { p.Policy.Version++ })
				return encode(t, signEnvelope(t, st, f.approvers("production")...))
			},
			want: []string{"policy version 2, newer than the trusted version 1"},
		},
		{
			name: "policy digest of another policy",
			env: func(t *testing.T) []byte {
				st := f.statement(t, "production", func(p *attest.Predicate) { p.Policy.Digest["sha256"] = strings.Repeat("0", 64) })
				return encode(t, signEnvelope(t, st, f.approvers("production")...))
			},
			want: []string{"names policy version 1 with digest sha256:0000"},
		},
		{
			name: "approval for another gate",
			env:  func(t *testing.T) []byte { return f.approved(t, "staging") },
			want: []string{`attestation approves gate "staging", not gate "production"`, `role "operator": 0 of 2`},
		},
		{
			name: "unknown gate",
			env:  func(t *testing.T) []byte { return f.approved(t, "production") },
			req:  func(r *policy.Request) { r.Gate = "canary" },
			want: []string{`unknown gate "canary"`},
		},
		{
			name: "malformed base64 payload",
			env: func(t *testing.T) []byte {
				return []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30*!","signatures":[]}`)
			},
			want: []string{"envelope payload: not valid base64"},
		},
		{
			name: "malformed base64 signature",
			env: func(t *testing.T) []byte {
				env := signEnvelope(t, good, orig[0], integ[0], oper[0], oper[1])
				env.Signatures = append(env.Signatures, attest.Signature{KeyID: integ[1].Public().ID(), Sig: "MEUC*IQ=="})
				return encode(t, env)
			},
			want: []string{`role "integrator": 1 of 2`, "sig is not valid base64"},
		},
		{
			name: "malformed envelope JSON",
			env:  func(t *testing.T) []byte { return []byte(`{"payloadType":"application/vnd.in-toto+json","payload":`) },
			want: []string{"malformed attestation: envelope"},
		},
		{
			name: "duplicate JSON key in envelope",
			env: func(t *testing.T) []byte {
				data := f.approved(t, "production")
				return bytes.Replace(data, []byte(`"payloadType":`), []byte(`"payload": "e30=", "payloadType":`), 1)
			},
			want: []string{`duplicate key "payload"`},
		},
		{
			name: "envelope key differing only in case",
			env: func(t *testing.T) []byte {
				data := f.approved(t, "production")
				return bytes.Replace(data, []byte(`"payloadType":`), []byte(`"Payload": "e30=", "payloadType":`), 1)
			},
			want: []string{`duplicate key "payload"`},
		},
		{
			name: "unknown envelope field",
			env: func(t *testing.T) []byte {
				return bytes.Replace(f.approved(t, "production"), []byte(`"payloadType":`), []byte(`"extra": 1, "payloadType":`), 1)
			},
			want: []string{`unknown field "extra"`},
		},
		{
			name: "more than 1024 subjects",
			env: func(t *testing.T) []byte {
				subjects := make([]attest.Subject, 1025)
				for i := range subjects {
					subjects[i] = artifactSubject()
				}
				st := rawStatement(t, subjects, attest.PredicateType, f.predicate("production"))
				return encode(t, signEnvelope(t, st, f.approvers("production")...))
			},
			want: []string{"1025 subjects, over the limit of 1024"},
		},
		{
			name: "more than 256 signatures",
			env: func(t *testing.T) []byte {
				env := signEnvelope(t, good, f.approvers("production")...)
				for len(env.Signatures) <= 256 {
					env.Signatures = append(env.Signatures, env.Signatures[0])
				}
				return encode(t, env)
			},
			want: []string{"257 signatures, over the limit of 256"},
		},
		{
			name: "envelope over the size limit",
			env: func(t *testing.T) []byte {
				return append(f.approved(t, "production"), bytes.Repeat([]byte(" "), 1<<20)...)
			},
			req:  func(r *policy.Request) { r.Limits = attest.Limits{MaxBytes: 1 << 20} },
			want: []string{"attestation too large: over the 1048576-byte limit"},
		},
		{
			name: "verification time not set",
			env:  func(t *testing.T) []byte { return f.approved(t, "production") },
			req:  func(r *policy.Request) { r.Now = time.Time{} },
			want: []string{"verification time not set"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := f
			if tc.trust != nil {
				fx = tc.trust
			}
			req := request("production")
			if tc.req != nil {
				tc.req(&req)
			}
			requireReasons(t, fx.Trust.VerifyBytes(tc.env(t), req, policy.WithHistory(fx.Trust.Source())), tc.want...)
		})
	}
}

func mustPAE(tb testing.TB, env *attest.Envelope) []byte {
	tb.Helper()
	pae, err := attest.PAE(env)
	if err != nil {
		tb.Fatal(err)
	}
	return pae
}

// weakSubject builds an otherwise valid production approval whose only
// subject has the given digests.
func weakSubject(f *fixture, digest map[string]string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		st := rawStatement(t, []attest.Subject{{Name: "app.tar.gz", Digest: digest}}, attest.PredicateType, f.predicate("production"))
		return encode(t, signEnvelope(t, st, f.approvers("production")...))
	}
}

func TestVerifyAcceptsStandardAndURLSafeBase64(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	env := signEnvelope(t, f.statement(t, "production", func(p *attest.Predicate) { p.RequestID = "req-???>>>~~~" }), f.approvers("production")...)
	payload, err := attest.DecodeBase64(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if base64.StdEncoding.EncodeToString(payload) == base64.URLEncoding.EncodeToString(payload) {
		t.Fatal("test payload encodes the same in both alphabets; the test would prove nothing")
	}
	for _, enc := range []struct {
		name string
		enc  *base64.Encoding
	}{{"standard", base64.StdEncoding}, {"url-safe", base64.URLEncoding}, {"standard unpadded", base64.RawStdEncoding}, {"url-safe unpadded", base64.RawURLEncoding}} {
		t.Run(enc.name, func(t *testing.T) {
			re := *env
			re.Payload = enc.enc.EncodeToString(payload)
			re.Signatures = nil
			for _, s := range env.Signatures {
				raw, err := attest.DecodeBase64(s.Sig)
				if err != nil {
					t.Fatal(err)
				}
				re.Signatures = append(re.Signatures, attest.Signature{KeyID: s.KeyID, Sig: enc.enc.EncodeToString(raw)})
			}
			requireVerified(t, f.Trust.VerifyBytes(encode(t, &re), request("production")))
		})
	}
}

// countingReader serves an endless stream of bytes and counts what was read.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestVerifyRefusesOversizeEnvelopeBeforeDecoding(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	for _, limit := range []int64{100, 4096, attest.DefaultLimits.MaxBytes} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			r := &countingReader{}
			req := request("production")
			if limit != attest.DefaultLimits.MaxBytes {
				req.Limits = attest.Limits{MaxBytes: limit}
			}
			v := f.Trust.Verify(io.MultiReader(strings.NewReader(`{"payload":`), r), req)
			requireReasons(t, v, fmt.Sprintf("over the %d-byte limit", limit))
			if read := r.n + int64(len(`{"payload":`)); read > limit+1+32*1024 {
				t.Errorf("read %d bytes for a %d-byte limit", read, limit)
			}
			if len(v.Reasons) != 1 {
				t.Errorf("reasons %q: want only the size limit", v.Reasons)
			}
		})
	}
}

func TestVerifyPartialLimitsKeepDefaults(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	req := request("production")
	req.Limits = attest.Limits{MaxBytes: 1 << 20}
	requireVerified(t, f.Trust.VerifyBytes(f.approved(t, "production"), req))
}

func TestVerifyGarbageSignaturesDoNotStopValidOnes(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	env := signEnvelope(t, f.statement(t, "production", nil), f.approvers("production")...)
	var sigs []attest.Signature
	for _, s := range env.Signatures {
		// Before each valid signature: a garbage signature under the same
		// key ID, one under no key ID and one that is not base64.
		sigs = append(sigs,
			attest.Signature{KeyID: s.KeyID, Sig: base64.StdEncoding.EncodeToString([]byte("garbage"))},
			attest.Signature{Sig: s.Sig},
			attest.Signature{KeyID: s.KeyID, Sig: "%%%"},
			s)
	}
	env.Signatures = sigs
	v := f.Trust.VerifyBytes(encode(t, env), request("production"))
	requireVerified(t, v)
	counted := 0
	for _, s := range v.Signatures {
		if s.Counted {
			counted++
			if s.Problem != "" {
				t.Errorf("signature %d counted with problem %q", s.Index, s.Problem)
			}
		} else if s.Problem == "" {
			t.Errorf("signature %d not counted and no problem given", s.Index)
		}
	}
	if counted != 5 {
		t.Errorf("%d signatures counted, want 5", counted)
	}
}

func TestVerifyListsEveryReason(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	st := f.statement(t, "production", func(p *attest.Predicate) {
		p.Expires = epoch.Add(time.Minute)
		p.Gate = "staging"
	})
	o := f.role("operator").Signers
	env := signEnvelope(t, st, f.role("originator").Signers[0], o[0], o[1])
	req := request("production")
	req.Artifacts[0].Digests[0].Hex = strings.Repeat("ef", 32)
	v := f.Trust.VerifyBytes(encode(t, env), req)
	requireReasons(t, v,
		`attestation approves gate "staging", not gate "production"`,
		"attestation expired at",
		"matches no subject of the attestation",
		`role "integrator": 0 of 2`,
	)
	if len(v.Reasons) != 4 {
		t.Errorf("%d reasons, want 4: %q", len(v.Reasons), v.Reasons)
	}
	var verdict map[string]any
	data, _ := json.Marshal(v)
	if err := json.Unmarshal(data, &verdict); err != nil || verdict["verified"] != false {
		t.Errorf("JSON verdict %s: want verified false", data)
	}
}
