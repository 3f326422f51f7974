package timestamp_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	rfc3161 "github.com/digitorus/timestamp"

	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/timestamp/tsatest"
)

// tsaUnder issues a TSA certificate from ca and runs an OpenSSL TSA for it.
func tsaUnder(t *testing.T, ca *tsatest.CA, o tsatest.TSAOptions) (*tsatest.TSA, *tsatest.Server) {
	t.Helper()
	tsa := ca.IssueTSA(t, o)
	return tsa, tsatest.Start(t, tsa, tsatest.ServerOptions{})
}

func mustTrust(t *testing.T, quorum int, as ...timestamp.Authority) *timestamp.Trust {
	t.Helper()
	tr, err := timestamp.NewTrust(quorum, as...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func authority(name string, ca *tsatest.CA) timestamp.Authority {
	return timestamp.Authority{Name: name, Roots: []*x509.Certificate{ca.Cert}}
}

// fetch obtains a token over digest from the TSA at url, with a client that
// checks only the response against the request (no trust).
func fetch(t *testing.T, url string, digest [32]byte) []byte {
	t.Helper()
	c, err := timestamp.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Timestamp(context.Background(), digest)
	if err != nil {
		t.Fatalf("timestamp from %s: %v", url, err)
	}
	return tok.DER
}

// goToken is a token made by github.com/digitorus/timestamp's responder
// for a certificate OpenSSL refuses to sign with (no, non-critical or
// wrong extended key usage: `openssl ts -reply` checks the purpose first).
func goToken(t testing.TB, tsa *tsatest.TSA, digest [32]byte) []byte {
	t.Helper()
	ts := rfc3161.Timestamp{
		HashAlgorithm:     crypto.SHA256,
		HashedMessage:     digest[:],
		Time:              time.Now().UTC(),
		Accuracy:          time.Second,
		Policy:            asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2},
		AddTSACertificate: true,
	}
	resp, err := ts.CreateResponseWithOpts(tsa.Cert, tsa.Key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := rfc3161.ParseResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.RawToken
}

func TestValidTokenFromOpenSSL(t *testing.T) {
	ca := tsatest.NewCA(t, "Test TSA Root 1")
	tsa, srv := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA One"})
	trust := mustTrust(t, 1, authority("tsa-one", ca))
	c, err := timestamp.NewClient(srv.URL, timestamp.WithTrust(trust))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("checkpoint text"))
	tok, err := c.Timestamp(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Stamp == nil || tok.TSA != srv.URL {
		t.Fatalf("token from %q, stamp %v", tok.TSA, tok.Stamp)
	}
	s, err := trust.VerifyToken(digest, tok.DER)
	if err != nil {
		t.Fatal(err)
	}
	// openssl ts: accuracy secs:1, millisecs:500, microsecs:100.
	if want := 1500*time.Millisecond + 100*time.Microsecond; s.Accuracy != want {
		t.Errorf("accuracy %v, want %v", s.Accuracy, want)
	}
	if !s.GenTime.Equal(tok.GenTime) || s.GenTime.IsZero() {
		t.Errorf("genTime %v, client saw %v", s.GenTime, tok.GenTime)
	}
	want := s.GenTime.Add(s.Accuracy)
	if s.GenTime.Nanosecond() == 0 {
		want = want.Add(time.Second - time.Nanosecond)
	}
	if !s.Bound.Equal(want) {
		t.Errorf("bound %v, want genTime+accuracy %v", s.Bound, want)
	}
	if len(s.Authorities) != 1 || s.Authorities[0] != "tsa-one" || !s.Certificate.Equal(tsa.Cert) {
		t.Errorf("attributed to %v, certificate %q", s.Authorities, s.Certificate.Subject)
	}
	if !s.Policy.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}) {
		t.Errorf("policy %v", s.Policy)
	}
	// The TSA's own certificate as the only anchor works too (pinning).
	pinned := mustTrust(t, 1, timestamp.Authority{Name: "pinned", Roots: []*x509.Certificate{tsa.Cert}})
	if _, err := pinned.VerifyToken(digest, tok.DER); err != nil {
		t.Errorf("pinned TSA certificate: %v", err)
	}
	r, err := trust.Verify(digest, [][]byte{tok.DER})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Time.Equal(s.Bound) || !r.GenTime.Equal(s.GenTime) || r.Accuracy != s.Accuracy || len(r.Stamps) != 1 {
		t.Errorf("result %+v, stamp bound %v", r, s.Bound)
	}
}

func TestTokenWithoutCertificates(t *testing.T) {
	ca := tsatest.NewCA(t, "Test TSA Root 1")
	tsa, srv := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA One"})
	digest := sha256.Sum256([]byte("checkpoint text"))
	tok := srv.RawTokenWithoutCertificates(t, digest)
	// The trust names the TSA certificate as an intermediate: it is found there.
	withLeaf := mustTrust(t, 1, timestamp.Authority{Name: "tsa-one", Roots: []*x509.Certificate{ca.Cert}, Intermediates: []*x509.Certificate{tsa.Cert}})
	s, err := withLeaf.VerifyToken(digest, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Certificate.Equal(tsa.Cert) {
		t.Errorf("signer %q", s.Certificate.Subject)
	}
	// Only the root: the signer's certificate is nowhere.
	if _, err := mustTrust(t, 1, authority("tsa-one", ca)).VerifyToken(digest, tok); !errors.Is(err, timestamp.ErrBadSignature) {
		t.Fatalf("got %v, want %v", err, timestamp.ErrBadSignature)
	}
}

func TestVerifyTokenRejects(t *testing.T) {
	ca := tsatest.NewCA(t, "Test TSA Root 1")
	other := tsatest.NewCA(t, "Another Root")
	trust := mustTrust(t, 1, authority("tsa-one", ca))
	digest := sha256.Sum256([]byte("checkpoint text"))

	_, good := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA One"})
	_, foreign := tsaUnder(t, other, tsatest.TSAOptions{Name: "TSA Elsewhere"})
	// Expired an hour ago: OpenSSL still signs, so genTime is after NotAfter.
	_, expired := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA Expired",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	_, notYet := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA Not Yet",
		NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})

	goodToken := fetch(t, good.URL, digest)
	tampered := append([]byte(nil), goodToken...)
	// Flip a byte near the end: the signature value.
	tampered[len(tampered)-5] ^= 0x01

	for _, tc := range []struct {
		name  string
		token []byte
		want  error
	}{
		{"bad imprint", fetch(t, good.URL, sha256.Sum256([]byte("another checkpoint"))), timestamp.ErrBadImprint},
		{"untrusted chain", fetch(t, foreign.URL, digest), timestamp.ErrUntrustedChain},
		{"TSA certificate expired at genTime", expired.RawToken(t, digest), timestamp.ErrCertificateExpired},
		{"TSA certificate not yet valid at genTime", notYet.RawToken(t, digest), timestamp.ErrCertificateExpired},
		{"missing EKU", goToken(t, ca.IssueTSA(t, tsatest.TSAOptions{Name: "No EKU", EKU: tsatest.EKUNone}), digest), timestamp.ErrMissingEKU},
		{"EKU not critical", goToken(t, ca.IssueTSA(t, tsatest.TSAOptions{Name: "Soft EKU", EKU: tsatest.EKUNonCritical}), digest), timestamp.ErrMissingEKU},
		{"EKU serverAuth instead of timeStamping", goToken(t, ca.IssueTSA(t, tsatest.TSAOptions{Name: "Web server", EKU: tsatest.EKUServerAuth}), digest), timestamp.ErrMissingEKU},
		{"tampered signature", tampered, timestamp.ErrBadSignature},
		{"not a token", []byte("not DER at all"), timestamp.ErrMalformedToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trust.VerifyToken(digest, tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// The same failure through Verify: the token does not count.
			_, err = trust.Verify(digest, [][]byte{tc.token})
			var ne *timestamp.NotEnoughError
			if !errors.As(err, &ne) || !errors.Is(err, tc.want) || ne.Have != 0 || len(ne.Rejected) != 1 {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
	// The Go-made token with a proper certificate verifies: the cases above
	// fail for their certificate, not for the token's maker.
	if _, err := trust.VerifyToken(digest, goToken(t, ca.IssueTSA(t, tsatest.TSAOptions{Name: "Go TSA"}), digest)); err != nil {
		t.Fatalf("control token: %v", err)
	}
}

func TestClientRejects(t *testing.T) {
	ca := tsatest.NewCA(t, "Test TSA Root 1")
	digest := sha256.Sum256([]byte("checkpoint text"))

	t.Run("nonce mismatch", func(t *testing.T) {
		tsa := ca.IssueTSA(t, tsatest.TSAOptions{Name: "Replaying TSA"})
		srv := tsatest.Start(t, tsa, tsatest.ServerOptions{Replay: true})
		c, err := timestamp.NewClient(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Timestamp(context.Background(), digest); err != nil {
			t.Fatal(err)
		}
		// Same imprint, replayed response: only the nonce differs.
		if _, err := c.Timestamp(context.Background(), digest); !errors.Is(err, timestamp.ErrNonceMismatch) {
			t.Fatalf("got %v, want %v", err, timestamp.ErrNonceMismatch)
		}
	})
	t.Run("expired TSA certificate", func(t *testing.T) {
		_, srv := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA Expired",
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		c, err := timestamp.NewClient(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Timestamp(context.Background(), digest); !errors.Is(err, timestamp.ErrCertificateExpired) {
			t.Fatalf("got %v, want %v", err, timestamp.ErrCertificateExpired)
		}
	})
	t.Run("untrusted TSA with trust", func(t *testing.T) {
		_, srv := tsaUnder(t, tsatest.NewCA(t, "Another Root"), tsatest.TSAOptions{Name: "TSA Elsewhere"})
		c, err := timestamp.NewClient(srv.URL, timestamp.WithTrust(mustTrust(t, 1, authority("tsa-one", ca))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Timestamp(context.Background(), digest); !errors.Is(err, timestamp.ErrUntrustedChain) {
			t.Fatalf("got %v, want %v", err, timestamp.ErrUntrustedChain)
		}
	})
	t.Run("TSA down", func(t *testing.T) {
		c, err := timestamp.NewClient("http://127.0.0.1:1/tsa")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Timestamp(context.Background(), digest); !errors.Is(err, timestamp.ErrUnavailable) {
			t.Fatalf("got %v, want %v", err, timestamp.ErrUnavailable)
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		for _, u := range []string{"", "ftp://tsa.example/", "http://user:pw@tsa.example/", "tsa.example"} {
			if _, err := timestamp.NewClient(u); err == nil {
				t.Errorf("NewClient(%q) accepted", u)
			}
		}
	})
}

func TestQuorum(t *testing.T) {
	ca1 := tsatest.NewCA(t, "Test TSA Root 1")
	ca2 := tsatest.NewCA(t, "Test TSA Root 2")
	ca3 := tsatest.NewCA(t, "Untrusted Root")
	_, one := tsaUnder(t, ca1, tsatest.TSAOptions{Name: "TSA One"})
	_, oneAgain := tsaUnder(t, ca1, tsatest.TSAOptions{Name: "TSA One bis"}) // same authority, another certificate
	_, two := tsaUnder(t, ca2, tsatest.TSAOptions{Name: "TSA Two"})
	_, stranger := tsaUnder(t, ca3, tsatest.TSAOptions{Name: "TSA Three"})
	trust := mustTrust(t, 2, authority("tsa-one", ca1), authority("tsa-two", ca2))
	digest := sha256.Sum256([]byte("checkpoint text"))

	clients := make([]*timestamp.Client, 0, 2)
	for _, s := range []*tsatest.Server{one, two} {
		c, err := timestamp.NewClient(s.URL, timestamp.WithTrust(trust))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	toks, err := timestamp.TimestampAll(context.Background(), clients, digest)
	if err != nil || len(toks) != 2 {
		t.Fatalf("TimestampAll: %d tokens, %v", len(toks), err)
	}
	t1, t2 := toks[0].DER, toks[1].DER
	t1b := fetch(t, one.URL, digest)
	t1other := fetch(t, oneAgain.URL, digest)
	t3 := fetch(t, stranger.URL, digest)

	t.Run("two TSAs with quorum 2", func(t *testing.T) {
		r, err := trust.Verify(digest, [][]byte{t1, t2})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Stamps) != 2 || r.Need != 2 {
			t.Fatalf("stamps %v, need %d", r.TSAs(), r.Need)
		}
		// The trusted time is the later of the two bounds (2nd smallest).
		later := r.Stamps[0].Bound
		if r.Stamps[1].Bound.After(later) {
			later = r.Stamps[1].Bound
		}
		if !r.Time.Equal(later) {
			t.Errorf("time %v, want the later bound %v", r.Time, later)
		}
	})
	for _, tc := range []struct {
		name   string
		tokens [][]byte
		have   int
		also   error
	}{
		{"same TSA twice counts once", [][]byte{t1, t1b}, 1, nil},
		{"same authority under two certificates counts once", [][]byte{t1, t1other}, 1, nil},
		{"identical token twice counts once", [][]byte{t2, t2}, 1, nil},
		{"untrusted TSA does not count", [][]byte{t1, t3}, 1, timestamp.ErrUntrustedChain},
		{"no tokens", nil, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trust.Verify(digest, tc.tokens)
			var ne *timestamp.NotEnoughError
			if !errors.As(err, &ne) || !errors.Is(err, timestamp.ErrNotEnoughTSAs) {
				t.Fatalf("got %v, want %v", err, timestamp.ErrNotEnoughTSAs)
			}
			if ne.Have != tc.have || ne.Need != 2 {
				t.Errorf("have %d need %d, want %d of 2", ne.Have, ne.Need, tc.have)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("%v does not say %v", err, tc.also)
			}
		})
	}
	t.Run("quorum 2 met despite an extra bad token", func(t *testing.T) {
		r, err := trust.Verify(digest, [][]byte{t3, t1, t1b, t2})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Stamps) != 2 || len(r.Rejected) != 1 || r.Rejected[0].Index != 0 {
			t.Fatalf("stamps %v, rejected %v", r.TSAs(), r.Rejected)
		}
	})
}

// TestConcurrentVerify shares one Trust between goroutines (run with -race).
func TestConcurrentVerify(t *testing.T) {
	ca1, ca2 := tsatest.NewCA(t, "Root 1"), tsatest.NewCA(t, "Root 2")
	trust := mustTrust(t, 2, authority("one", ca1), authority("two", ca2))
	digest := sha256.Sum256([]byte("checkpoint text"))
	_, s1 := tsaUnder(t, ca1, tsatest.TSAOptions{Name: "TSA One"})
	_, s2 := tsaUnder(t, ca2, tsatest.TSAOptions{Name: "TSA Two"})
	tokens := [][]byte{fetch(t, s1.URL, digest), fetch(t, s2.URL, digest)}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := trust.Verify(digest, tokens)
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestNewTrustRefuses(t *testing.T) {
	ca1 := tsatest.NewCA(t, "Root 1")
	ca2 := tsatest.NewCA(t, "Root 2")
	for _, tc := range []struct {
		name   string
		quorum int
		as     []timestamp.Authority
	}{
		{"quorum 0", 0, []timestamp.Authority{authority("a", ca1)}},
		{"quorum above authorities", 2, []timestamp.Authority{authority("a", ca1)}},
		{"same name twice", 1, []timestamp.Authority{authority("a", ca1), authority("a", ca2)}},
		{"same root under two authorities", 1, []timestamp.Authority{authority("a", ca1), authority("b", ca1)}},
		{"no root", 1, []timestamp.Authority{{Name: "a"}}},
		{"no name", 1, []timestamp.Authority{{Roots: []*x509.Certificate{ca1.Cert}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := timestamp.NewTrust(tc.quorum, tc.as...); !errors.Is(err, timestamp.ErrTrust) {
				t.Fatalf("got %v, want %v", err, timestamp.ErrTrust)
			}
		})
	}
}
