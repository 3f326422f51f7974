package sigbundle_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/sigbundle"
)

// FuzzParse: Parse never panics, and what it accepts encodes and parses back
// to the same bundle.
func FuzzParse(f *testing.F) {
	s := testkeys.Signer(f, hsm.ECDSAP256)
	st, err := attest.NewStatement(
		[]attest.Subject{{Name: "a", Digest: map[string]string{"sha256": "0000000000000000000000000000000000000000000000000000000000000000"}}},
		attest.Predicate{Gate: "g", Policy: attest.PolicyRef{Version: 1, Digest: map[string]string{"sha256": "1111111111111111111111111111111111111111111111111111111111111111"}},
			RequestID: "r", Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		f.Fatal(err)
	}
	env := attest.NewEnvelope(st)
	if _, err := attest.Sign(f.Context(), env, s); err != nil {
		f.Fatal(err)
	}
	bs, err := sigbundle.Split(env)
	if err != nil {
		f.Fatal(err)
	}
	good, err := bs[0].Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := sigbundle.Parse(data, attest.Limits{MaxBytes: 1 << 16})
		if err != nil {
			return
		}
		enc, err := b.Marshal()
		if err != nil {
			t.Fatalf("accepted bundle does not encode: %v", err)
		}
		b2, err := sigbundle.Parse(enc, attest.Limits{})
		if err != nil {
			t.Fatalf("re-encoded bundle refused: %v", err)
		}
		if b2.KeyID != b.KeyID || b2.PayloadType != b.PayloadType || !bytes.Equal(b2.Payload, b.Payload) || !bytes.Equal(b2.Sig, b.Sig) {
			t.Fatal("round trip changed the bundle")
		}
	})
}
