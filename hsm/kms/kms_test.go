package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

var ctx = context.Background()

func compiled(scheme string) bool {
	for _, s := range Schemes() {
		if s == scheme {
			return true
		}
	}
	return false
}

func TestURIs(t *testing.T) {
	cases := []struct {
		name  string
		uri   string
		valid bool
	}{
		{"aws key id", "awskms:///1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"aws key id with endpoint", "awskms://localhost:4566/1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"aws alias", "awskms:///alias/release-root", true},
		{"aws key arn", "awskms:///arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"aws alias arn", "awskms:///arn:aws:kms:us-east-2:111122223333:alias/release", true},
		{"aws not a key id", "awskms:///not-a-key", false},
		{"aws no slash", "awskms://1234abcd-12ab-34cd-56ef-1234567890ab", false},
		{"gcp key", "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k", true},
		{"gcp key version", "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3", true},
		{"gcp missing key ring", "gcpkms://projects/p/locations/global/cryptoKeys/k", false},
		{"azure key", "azurekms://myvault.vault.azure.net/release", true},
		{"azure key version", "azurekms://myvault.vault.azure.net/release/0123abcd", true},
		{"azure no key", "azurekms://myvault.vault.azure.net", false},
		{"vault key", "hashivault://release-root", true},
		{"vault key with dots", "hashivault://team.release-1", true},
		{"vault path", "hashivault://a/b", false},
		{"vault empty", "hashivault://", false},
	}
	b := New(hsm.Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scheme, _, _ := strings.Cut(tc.uri, "://")
			_, err := b.providerFor(tc.uri)
			switch {
			case !compiled(scheme):
				if !errors.Is(err, hsm.ErrUnknownScheme) {
					t.Fatalf("%s left out of this build: %v, want ErrUnknownScheme", scheme, err)
				}
			case tc.valid && err != nil:
				t.Fatalf("providerFor(%q): %v", tc.uri, err)
			case !tc.valid && !errors.Is(err, ErrBadURI):
				t.Fatalf("providerFor(%q) = %v, want ErrBadURI", tc.uri, err)
			}
		})
	}
	for _, bad := range []string{"no-scheme", "fookms://x", "AWSKMS:///alias/x", "pkcs11:token=x"} {
		if _, err := b.providerFor(bad); err == nil {
			t.Errorf("providerFor(%q) accepted", bad)
		}
	}
}

func TestRegister(t *testing.T) {
	r := hsm.NewRegistry(hsm.Options{})
	Register(r)
	got := strings.Join(r.Schemes(), ",")
	if got != strings.Join(Schemes(), ",") {
		t.Fatalf("registered %s, compiled in %s", got, strings.Join(Schemes(), ","))
	}
	if _, err := r.Signer(ctx, "fookms://k"); !errors.Is(err, hsm.ErrUnknownScheme) {
		t.Fatalf("unknown scheme: %v", err)
	}
}

// The adapter tests run sigstore's own in-process SignerVerifiers (real
// crypto.Signers) at the Remote seam, behind a provider whose load honours
// the hash it is asked for, as the real providers do.

type keyCase struct {
	name   string
	priv   crypto.Signer
	load   func(priv crypto.Signer, h crypto.Hash) (signature.SignerVerifier, error)
	scheme string
}

func ecdsaKey(t *testing.T, c elliptic.Curve) crypto.Signer {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyCases(t *testing.T) []keyCase {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	loadECDSA := func(p crypto.Signer, h crypto.Hash) (signature.SignerVerifier, error) {
		return signature.LoadECDSASignerVerifier(p.(*ecdsa.PrivateKey), h)
	}
	return []keyCase{
		{"ecdsa-p256", ecdsaKey(t, elliptic.P256()), loadECDSA, keys.SchemeECDSAP256},
		{"ecdsa-p384 needs SHA-384", ecdsaKey(t, elliptic.P384()), loadECDSA, keys.SchemeECDSAP384},
		{"rsa-pss", rsaKey, func(p crypto.Signer, h crypto.Hash) (signature.SignerVerifier, error) {
			return signature.LoadRSAPSSSignerVerifier(p.(*rsa.PrivateKey), h, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}, keys.SchemeRSAPSS},
		{"ed25519", edKey, func(p crypto.Signer, _ crypto.Hash) (signature.SignerVerifier, error) {
			return signature.LoadED25519SignerVerifier(p.(ed25519.PrivateKey))
		}, keys.SchemeEd25519},
	}
}

// fakeBackend serves one key through a test provider.
func fakeBackend(scheme string, rsaPKCS1Only bool, load func(h crypto.Hash) (Remote, error)) *Backend {
	return &Backend{providers: []*provider{{
		scheme:   scheme,
		validate: func(string) error { return nil },
		load: func(_ context.Context, _ string, h crypto.Hash, _ func(string) string) (Remote, error) {
			return load(h)
		},
		rsaPKCS1Only: rsaPKCS1Only,
		forms:        scheme + "://KEY",
	}}}
}

func TestAdapter(t *testing.T) {
	for _, kc := range keyCases(t) {
		t.Run(kc.name, func(t *testing.T) {
			b := fakeBackend("fakekms", false, func(h crypto.Hash) (Remote, error) { return kc.load(kc.priv, h) })
			s, err := b.Signer(ctx, "fakekms://k")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Public().Scheme() != kc.scheme {
				t.Fatalf("scheme %s, want %s", s.Public().Scheme(), kc.scheme)
			}
			want, _ := keys.FromCrypto(kc.priv.Public())
			if s.Public().ID() != want.ID() {
				t.Fatal("public key differs from the provider's")
			}
			msg := []byte("release " + kc.name)
			sig, err := s.Sign(ctx, msg)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := want.Verify(msg, sig); err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			if err := want.Verify([]byte("other"), sig); err == nil {
				t.Fatal("signature verifies over another message")
			}
			pub, err := b.PublicKey(ctx, "fakekms://k")
			if err != nil || pub.ID() != want.ID() {
				t.Fatalf("PublicKey: %v %v", pub, err)
			}
			s.Close()
			if _, err := s.Sign(ctx, msg); !errors.Is(err, ErrClosed) {
				t.Fatalf("Sign after Close: %v", err)
			}
		})
	}
}

// wrongRemote answers with whatever sign returns.
type wrongRemote struct {
	pub  crypto.PublicKey
	sign func(msg io.Reader, opts ...signature.SignOption) ([]byte, error)
}

func (w wrongRemote) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return w.pub, nil
}
func (w wrongRemote) SignMessage(m io.Reader, opts ...signature.SignOption) ([]byte, error) {
	return w.sign(m, opts...)
}

func TestAdapterRefuses(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256 := ecdsaKey(t, elliptic.P256())
	p224 := ecdsaKey(t, elliptic.P224())
	other := ecdsaKey(t, elliptic.P256())
	cases := []struct {
		name      string
		pkcs1Only bool
		load      func(h crypto.Hash) (Remote, error)
		openErr   error
		signErr   error
	}{
		{"RSA PKCS#1 v1.5 answer", false, func(h crypto.Hash) (Remote, error) {
			return signature.LoadRSAPKCS1v15SignerVerifier(rsaKey, h)
		}, nil, ErrSchemeMismatch},
		{"RSA key in a PKCS#1-only provider", true, func(h crypto.Hash) (Remote, error) {
			return signature.LoadRSAPSSSignerVerifier(rsaKey, h, nil)
		}, ErrUnsupportedKey, nil},
		{"signature by another key", false, func(h crypto.Hash) (Remote, error) {
			sv, err := signature.LoadECDSASignerVerifier(other.(*ecdsa.PrivateKey), h)
			return wrongRemote{pub: p256.Public(), sign: func(m io.Reader, opts ...signature.SignOption) ([]byte, error) { return sv.SignMessage(m, opts...) }}, err
		}, nil, ErrSchemeMismatch},
		{"truncated signature", false, func(h crypto.Hash) (Remote, error) {
			sv, err := signature.LoadECDSASignerVerifier(p256.(*ecdsa.PrivateKey), h)
			return wrongRemote{pub: p256.Public(), sign: func(m io.Reader, opts ...signature.SignOption) ([]byte, error) {
				sig, err := sv.SignMessage(m, opts...)
				if err != nil {
					return nil, err
				}
				return sig[:len(sig)-3], nil
			}}, err
		}, nil, ErrSchemeMismatch},
		{"provider error", false, func(h crypto.Hash) (Remote, error) {
			return wrongRemote{pub: p256.Public(), sign: func(io.Reader, ...signature.SignOption) ([]byte, error) { return nil, errors.New("throttled") }}, nil
		}, nil, errors.New("throttled")},
		{"curve quorate does not accept", false, func(h crypto.Hash) (Remote, error) {
			return signature.LoadECDSASignerVerifier(p224.(*ecdsa.PrivateKey), h)
		}, ErrUnsupportedKey, nil},
		{"load fails", false, func(h crypto.Hash) (Remote, error) { return nil, errors.New("no credentials") }, errors.New("no credentials"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := fakeBackend("fakekms", tc.pkcs1Only, tc.load)
			s, err := b.Signer(ctx, "fakekms://k")
			if tc.openErr != nil {
				if err == nil || !(errors.Is(err, tc.openErr) || strings.Contains(err.Error(), tc.openErr.Error())) {
					t.Fatalf("Signer: %v, want %v", err, tc.openErr)
				}
				if !strings.Contains(err.Error(), "fakekms://k") {
					t.Errorf("error %q does not name the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.Sign(ctx, []byte("msg"))
			if err == nil || sig != nil {
				t.Fatalf("Sign = %x, %v; want no signature and %v", sig, err, tc.signErr)
			}
			if !errors.Is(err, tc.signErr) && !strings.Contains(err.Error(), tc.signErr.Error()) {
				t.Fatalf("Sign error %v, want %v", err, tc.signErr)
			}
		})
	}
}

func TestAdapterConcurrent(t *testing.T) {
	s := p256Signer(t)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if _, err := s.Sign(ctx, fmt.Appendf(nil, "%d/%d", g, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSignCancelled(t *testing.T) {
	s := p256Signer(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Sign(c, []byte("m")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sign with a cancelled context: %v", err)
	}
}

// p256Signer opens a signer on a fresh P-256 key behind the fake provider.
func p256Signer(t *testing.T) hsm.Signer {
	t.Helper()
	k := ecdsaKey(t, elliptic.P256())
	b := fakeBackend("fakekms", false, func(h crypto.Hash) (Remote, error) {
		return signature.LoadECDSASignerVerifier(k.(*ecdsa.PrivateKey), h)
	})
	s, err := b.Signer(ctx, "fakekms://k")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
