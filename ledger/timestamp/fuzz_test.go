package timestamp_test

import (
	"crypto/sha256"
	"testing"

	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/timestamp/tsatest"
)

// FuzzVerifyToken feeds arbitrary bytes, seeded with a token of the
// trusted TSA (made by digitorus/timestamp's responder, in process: the
// fuzzing workers each run this setup), to the verifier: it must return an
// error or a stamp by the trusted TSA's certificate, never panic.
func FuzzVerifyToken(f *testing.F) {
	ca := tsatest.NewCA(f, "Fuzz Root")
	tsa := ca.IssueTSA(f, tsatest.TSAOptions{Name: "Fuzz TSA"})
	digest := sha256.Sum256([]byte("checkpoint"))
	f.Add(goToken(f, tsa, digest))
	trust, err := timestamp.NewTrust(1, authority("fuzz", ca))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		s, err := trust.VerifyToken(digest, der)
		if err == nil && !s.Certificate.Equal(tsa.Cert) {
			t.Fatalf("verified with another certificate %q", s.Certificate.Subject)
		}
		_, _ = trust.Verify(digest, [][]byte{der})
	})
}
