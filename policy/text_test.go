package policy_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/attest"
)

// TestVerifyRefusesWhatAPartyCannotSee: the attestation of issue 11, fully
// signed by another tool (no coordinator or quorate attest to stop it): the
// artifact being verified is a real subject, but another subject's name
// hides it on a terminal. The verifier refuses it whatever the policy,
// naming the field and the code point, and its reasons carry no raw
// control character.
func TestVerifyRefusesWhatAPartyCannotSee(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	backdoor := artifactSubject()
	backdoor.Name = "evil-backdoor.bin"
	other := attest.Subject{Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}
	for _, tc := range []struct {
		name, disguise string
		want           string
	}{
		{"ansi-escape", "\x1b[1A\r\x1b[2Kapp.tgz", "name: U+001B (C0 control) at offset 0"},
		{"bidi-override", "app\u202egzt.exe", "name: U+202E (bidirectional embedding or override)"},
		{"zero-width-joiner", "evil-backdoor\u200d.bin", "name: U+200D (zero-width character)"},
		{"nfkc-duplicate", "evil-backdoor\uff0ebin", "after Unicode NFKC normalization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disguised := other
			disguised.Name = tc.disguise
			st := rawStatement(t, []attest.Subject{backdoor, disguised}, attest.PredicateType, f.predicate("production"))
			v := f.Trust.Verify(bytes.NewReader(encode(t, signEnvelope(t, st, f.approvers("production")...))), request("production"))
			requireReasons(t, v, tc.want)
			for _, r := range v.Reasons {
				if strings.ContainsFunc(r.Message, func(c rune) bool { return attest.RuneClass(c, false) != "" }) {
					t.Fatalf("reason %q carries a raw control or invisible character", r)
				}
			}
		})
	}
}
