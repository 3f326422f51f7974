//go:build cgo

package pkcs11

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/citest"
)

// Ed25519 keys go through CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA
// directly (crypto11 v1.5 has no EdDSA); these tests check them against a
// real SoftHSM2 token and verify every signature with crypto/ed25519, not
// with the code under test.

// edPublic returns the signer's key as a crypto/ed25519 key.
func edPublic(t *testing.T, s hsm.Signer) ed25519.PublicKey {
	t.Helper()
	pub, ok := s.Public().Crypto().(ed25519.PublicKey)
	if !ok {
		t.Fatalf("public key is %T, want ed25519.PublicKey", s.Public().Crypto())
	}
	return pub
}

func TestEd25519GenerateExportSign(t *testing.T) {
	f := newToken(t)
	b, _ := newBackend(t)
	pub, err := b.Generate(ctx, f.uri("log-key"), hsm.Ed25519)
	if err != nil {
		t.Fatalf("Generate ed25519: %v", err)
	}
	s, err := b.Signer(ctx, f.uri("log-key"))
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	defer s.Close()
	if s.Public().ID() != pub.ID() {
		t.Fatalf("signer key %s, generated %s", s.Public().ID(), pub.ID())
	}
	edPub := edPublic(t, s)

	for _, msg := range [][]byte{
		[]byte("quorate.example/log\n1\nAAAA\n"),
		{},
		bytes.Repeat([]byte{0xff}, 64<<10),
	} {
		sig, err := s.Sign(ctx, msg)
		if err != nil {
			t.Fatalf("Sign(%d bytes): %v", len(msg), err)
		}
		if !ed25519.Verify(edPub, msg, sig) {
			t.Fatalf("crypto/ed25519 rejects the token's signature over %d bytes", len(msg))
		}
		// Ed25519 is deterministic: the token must sign pure Ed25519 of the
		// message itself (not a digest, not Ed25519ph).
		again, err := s.Sign(ctx, msg)
		if err != nil || !bytes.Equal(sig, again) {
			t.Fatalf("second signature differs (%v): pure Ed25519 is deterministic", err)
		}
	}

	// The exported public key is the DER OCTET STRING of CKA_EC_POINT.
	rawSlot(t, b, f, func(m *rawModule, slot uint) {
		sh, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer m.ctx.CloseSession(sh)
		hs, err := findAll(m.ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_LABEL, "log-key")})
		if err != nil || len(hs) != 1 {
			t.Fatalf("public keys: %v %v", hs, err)
		}
		attrs, err := m.ctx.GetAttributeValue(sh, hs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil), p11.NewAttribute(p11.CKA_KEY_TYPE, nil), p11.NewAttribute(p11.CKA_EC_PARAMS, nil)})
		if err != nil {
			t.Fatal(err)
		}
		// SoftHSM2 2.6 takes the curve as the id-Ed25519 OID.
		if !bytes.Equal(attrs[2].Value, ed25519OID) {
			t.Fatalf("CKA_EC_PARAMS = %x, want the id-Ed25519 OID %x", attrs[2].Value, ed25519OID)
		}
		want := append([]byte{0x04, 0x20}, edPub...)
		if !bytes.Equal(attrs[0].Value, want) {
			t.Fatalf("CKA_EC_POINT = %x, want %x", attrs[0].Value, want)
		}
		if kt := ulong(attrs[1].Value); kt != ckkECEdwards {
			t.Fatalf("CKA_KEY_TYPE = %#x, want CKK_EC_EDWARDS", kt)
		}
	})

	got, err := b.PublicKey(ctx, f.uri("log-key"))
	if err != nil || got.ID() != pub.ID() {
		t.Fatalf("PublicKey = %v, %v; want %s", got, err, pub.ID())
	}
}

func TestEd25519ConcurrentSign(t *testing.T) {
	const goroutines, each = 16, 64
	f := newToken(t)
	b, _ := newBackend(t)
	s := generatedSigner(t, b, f, "busy-ed", hsm.Ed25519)
	edPub := edPublic(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
				sig, err := s.Sign(ctx, msg)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d signature %d: %w", g, i, err)
					return
				}
				if !ed25519.Verify(edPub, msg, sig) {
					errs <- fmt.Errorf("goroutine %d signature %d does not verify", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEd25519WrongPIN(t *testing.T) {
	f := newToken(t)
	setup, _ := newBackend(t)
	if _, err := setup.Generate(ctx, f.uri("ed"), hsm.Ed25519); err != nil {
		t.Fatal(err)
	}
	setup.Close()
	cases := []struct {
		name string
		uri  string
	}{
		{"wrong pin-value", "pkcs11:token=" + f.label + ";object=ed?module-path=" + softhsm.module + "&pin-value=wrong-pin-9876"},
		{"wrong PIN while the token is open", "pkcs11:token=" + f.label + ";object=ed?module-path=" + softhsm.module + "&pin-value=wrong-pin-9876"},
	}
	b, logs := newBackend(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if i == 1 {
				// Open the token with the right PIN first: the login is then
				// held, and a wrong PIN must still be refused.
				s, err := b.Signer(ctx, f.uri("ed"))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				sign(t, s, []byte("right PIN"))
			}
			s, err := b.Signer(ctx, tc.uri)
			if err == nil {
				s.Close()
				t.Fatal("Signer with a wrong PIN succeeded")
			}
			if !errors.Is(err, ErrWrongPIN) {
				t.Fatalf("error %v, want ErrWrongPIN", err)
			}
			var logText []string
			for _, e := range logs.All() {
				logText = append(logText, fmt.Sprint(e.Message, e.ContextMap()))
			}
			mustNotLeak(t, "wrong-pin-9876", append(logText, err.Error())...)
			mustNotLeak(t, f.pin, append(logText, err.Error())...)
		})
	}
}

// TestEd25519KeyFromPkcs11Tool checks a key made by another program
// (OpenSC's pkcs11-tool) is found, listed and signs.
func TestEd25519KeyFromPkcs11Tool(t *testing.T) {
	f := newToken(t)
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		citest.SkipOrFail(t, "pkcs11-tool", "pkcs11-tool not found; scripts/softhsm.sh install installs opensc")
	}
	out, err := exec.Command("pkcs11-tool", "--module", softhsm.module, "--token-label", f.label, "--login", "--pin", f.pin,
		"--keypairgen", "--key-type", "EC:edwards25519", "--label", "ed", "--id", "09").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --keypairgen EC:edwards25519: %v: %s", err, out)
	}
	b, _ := newBackend(t)
	list, err := b.List(ctx, f.uri(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Key == nil || list[0].Key.Scheme() != "ed25519" || !strings.Contains(list[0].URI, "id=%09") {
		t.Fatalf("List = %+v, want the one Ed25519 key id=%%09", list)
	}
	s, err := b.Signer(ctx, list[0].URI)
	if err != nil {
		t.Fatalf("Signer(%s): %v", list[0].URI, err)
	}
	defer s.Close()
	msg := []byte("signed by a key pkcs11-tool made")
	sig := sign(t, s, msg)
	if !ed25519.Verify(edPublic(t, s), msg, sig) {
		t.Fatal("crypto/ed25519 rejects the signature")
	}
}

// TestEd25519Recovery checks the Ed25519 path reopens the token after the
// login is lost, like the crypto11 path.
func TestEd25519Recovery(t *testing.T) {
	f := newToken(t)
	b, logs := newBackend(t)
	s := generatedSigner(t, b, f, "k", hsm.Ed25519)
	sign(t, s, []byte("before"))
	rawSlot(t, b, f, func(m *rawModule, slot uint) {
		if err := m.ctx.CloseAllSessions(slot); err != nil {
			t.Fatal(err)
		}
	})
	sign(t, s, []byte("after all sessions were closed"))
	if n := logs.FilterMessage("PKCS#11 session lost; reopening the token and trying again").Len(); n != 1 {
		t.Fatalf("token reopened %d times, want 1", n)
	}
}

// TestEd25519WithoutPublicKey: a private key whose public key object is gone
// is reported, not guessed at.
func TestEd25519WithoutPublicKey(t *testing.T) {
	f := newToken(t)
	b, _ := newBackend(t)
	if _, err := b.Generate(ctx, f.uri("lonely"), hsm.Ed25519); err != nil {
		t.Fatal(err)
	}
	rawSlot(t, b, f, func(m *rawModule, slot uint) {
		sh, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer m.ctx.CloseSession(sh)
		if err := m.ctx.Login(sh, p11.CKU_USER, f.pin); err != nil && !hasCode(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
			t.Fatal(err)
		}
		hs, err := findAll(m.ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_LABEL, "lonely")})
		if err != nil || len(hs) != 1 {
			t.Fatalf("public keys: %v %v", hs, err)
		}
		if err := m.ctx.DestroyObject(sh, hs[0]); err != nil {
			t.Fatal(err)
		}
	})
	b.Close()
	b2, _ := newBackend(t)
	_, err := b2.Signer(ctx, f.uri("lonely"))
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Signer: %v, want ErrKeyNotFound", err)
	}
	mustContain(t, err, "public key", "lonely")
	mustNotLeak(t, f.pin, err.Error())
}
