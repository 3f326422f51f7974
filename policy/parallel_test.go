package policy_test

import (
	"encoding/base64"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

// TestVerifySameVerdictOnOneCoreAndMany: signatures verified in parallel
// before counting (several cores) give exactly the verdict of verifying
// them one by one in order (one core), whatever is wrong with them; and so
// does skipping the signatures a memo says verified before
// (WithVerifiedSignatures).
func TestVerifySameVerdictOnOneCoreAndMany(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	integ := f.role("integrator").Signers
	good := f.statement(t, "production", nil)
	garbage := base64.StdEncoding.EncodeToString([]byte("garbage"))
	tests := []struct {
		name     string
		env      func(t *testing.T) *attest.Envelope
		verified bool
	}{
		{"all valid", func(t *testing.T) *attest.Envelope {
			return signEnvelope(t, good, f.approvers("production")...)
		}, true},
		{"one altered", func(t *testing.T) *attest.Envelope {
			env := signEnvelope(t, good, f.approvers("production")...)
			env.Signatures[2].Sig = garbage
			return env
		}, false},
		{"garbage before each valid one", func(t *testing.T) *attest.Envelope {
			env := signEnvelope(t, good, f.approvers("production")...)
			var sigs []attest.Signature
			for _, s := range env.Signatures {
				sigs = append(sigs, attest.Signature{KeyID: s.KeyID, Sig: garbage}, attest.Signature{KeyID: s.KeyID, Sig: "%%%"}, s)
			}
			env.Signatures = sigs
			return env
		}, true},
		{"valid then a second valid signature by the same key", func(t *testing.T) *attest.Envelope {
			env := signEnvelope(t, good, f.approvers("production")...)
			env.Signatures = append(env.Signatures, rawSignature(t, integ[0], mustPAE(t, env)))
			return env
		}, true}, // the duplicate is refused, the rest meet the gate
		{"unknown key ID and no key ID", func(t *testing.T) *attest.Envelope {
			env := signEnvelope(t, good, f.approvers("production")...)
			env.Signatures = append(env.Signatures, attest.Signature{KeyID: "0123abcd", Sig: garbage}, attest.Signature{Sig: garbage})
			return env
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encode(t, tt.env(t))
			verdict := func(procs int, opts ...policy.VerifyOption) string {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				v := f.Trust.VerifyBytes(data, request("production"), opts...)
				if v.Verified != tt.verified {
					t.Errorf("GOMAXPROCS=%d: verified=%v, want %v (%v)", procs, v.Verified, tt.verified, v.Err())
				}
				b, err := json.Marshal(v.Signatures)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			one, many := verdict(1), verdict(4)
			if one != many {
				t.Errorf("signature verdicts differ:\none core:   %s\nfour cores: %s", one, many)
			}
			// A memo of the triples that verified (as the coordinator
			// keeps from arrival): the first pass fills it, the second
			// skips those verifications; the verdict never changes.
			memo, hits := map[string]bool{}, 0
			verified := policy.WithVerifiedSignatures(func(k *keys.PublicKey, d, sig []byte) bool {
				key := k.ID() + "\x00" + string(d) + "\x00" + string(sig)
				if memo[key] {
					hits++
					return true
				}
				if k.VerifyDigest(d, sig) == nil {
					memo[key] = true
				}
				return false
			})
			for _, pass := range []string{"filling the memo", "from the memo"} {
				for _, procs := range []int{1, 4} {
					if got := verdict(procs, verified); got != one {
						t.Errorf("%s, GOMAXPROCS=%d: signature verdicts differ:\nwithout: %s\nwith:    %s", pass, procs, one, got)
					}
				}
			}
			if hits == 0 {
				t.Error("the memo of verified signatures was never used")
			}
		})
	}
}
