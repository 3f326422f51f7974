//go:build cgo

package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

func TestKeyTypes(t *testing.T) {
	cases := []struct {
		kt     hsm.KeyType
		scheme string
		slow   bool
	}{
		{hsm.ECDSAP256, keys.SchemeECDSAP256, false},
		{hsm.ECDSAP384, keys.SchemeECDSAP384, false},
		{hsm.Ed25519, keys.SchemeEd25519, false},
		{hsm.RSA2048, keys.SchemeRSAPSS, false},
		{hsm.RSA3072, keys.SchemeRSAPSS, false},
		{hsm.RSA4096, keys.SchemeRSAPSS, true},
	}
	for _, tc := range cases {
		t.Run(string(tc.kt), func(t *testing.T) {
			if tc.slow && testing.Short() {
				t.Skip("RSA-4096 generation is slow in SoftHSM2; skipped with -short")
			}
			f := newToken(t)
			b, _ := newBackend(t)
			uri := f.uri("k1")

			pub, err := b.Generate(ctx, uri, tc.kt)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if pub.Scheme() != tc.scheme {
				t.Fatalf("scheme %s, want %s", pub.Scheme(), tc.scheme)
			}

			// Export.
			got, err := b.PublicKey(ctx, uri)
			if err != nil {
				t.Fatalf("PublicKey: %v", err)
			}
			if got.ID() != pub.ID() {
				t.Fatalf("PublicKey ID %s, generated %s", got.ID(), pub.ID())
			}

			// List.
			list, err := b.List(ctx, "pkcs11:token="+f.label+"?module-path="+softhsm.module+"&pin-source="+f.pinFile)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(list) != 1 || list[0].Key == nil || list[0].Key.ID() != pub.ID() || list[0].Label != "k1" {
				t.Fatalf("List = %+v, want the one key k1 %s", list, pub.ID())
			}
			if strings.Contains(list[0].URI, f.pin) || !strings.Contains(list[0].URI, "object=k1;id=%") {
				t.Fatalf("listed URI %q", list[0].URI)
			}

			// Sign and verify, through the listed URI.
			s, err := b.Signer(ctx, list[0].URI)
			if err != nil {
				t.Fatalf("Signer(%s): %v", list[0].URI, err)
			}
			defer s.Close()
			msg := []byte("release v1.2.3 of " + string(tc.kt))
			sig := sign(t, s, msg)
			if err := s.Public().Verify([]byte("release v1.2.4"), sig); !errors.Is(err, keys.ErrBadSignature) {
				t.Fatalf("signature verifies over another message: %v", err)
			}

			// The private key must be sensitive and non-extractable.
			rawSlot(t, b, f, func(m *rawModule, slot uint) {
				sh, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
				if err != nil {
					t.Fatal(err)
				}
				defer m.ctx.CloseSession(sh)
				hs, err := findAll(m.ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)})
				if err != nil || len(hs) != 1 {
					t.Fatalf("private keys: %v %v", hs, err)
				}
				attrs, err := m.ctx.GetAttributeValue(sh, hs[0], []*p11.Attribute{
					p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
					p11.NewAttribute(p11.CKA_SENSITIVE, nil),
					p11.NewAttribute(p11.CKA_DECRYPT, nil),
				})
				if err != nil {
					t.Fatal(err)
				}
				if attrs[0].Value[0] != 0 || attrs[1].Value[0] != 1 || attrs[2].Value[0] != 0 {
					t.Fatalf("private key extractable=%v sensitive=%v decrypt=%v, want false true false", attrs[0].Value, attrs[1].Value, attrs[2].Value)
				}
			})

			// A second key with the same label is refused.
			if _, err := b.Generate(ctx, uri, tc.kt); !errors.Is(err, ErrKeyExists) {
				t.Fatalf("Generate over an existing key: %v, want ErrKeyExists", err)
			}
		})
	}
}

func TestGenerateWithID(t *testing.T) {
	f := newToken(t)
	b, _ := newBackend(t)
	idOnly := "pkcs11:token=" + f.label + ";id=%AB%01?module-path=" + softhsm.module + "&pin-source=" + f.pinFile
	pub, err := b.Generate(ctx, idOnly, hsm.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.PublicKey(ctx, idOnly)
	if err != nil || got.ID() != pub.ID() {
		t.Fatalf("PublicKey by id: %v %v", got, err)
	}
	sameID := "pkcs11:token=" + f.label + ";object=other;id=%AB%01?module-path=" + softhsm.module + "&pin-source=" + f.pinFile
	if _, err := b.Generate(ctx, sameID, hsm.ECDSAP256); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("Generate with a used id: %v, want ErrKeyExists", err)
	}
	if _, err := b.Generate(ctx, f.uri(""), hsm.ECDSAP256); !errors.Is(err, ErrBadURI) {
		t.Fatalf("Generate without object/id: %v, want ErrBadURI", err)
	}
}

func TestConcurrentSign(t *testing.T) {
	const goroutines, each = 32, 256
	f := newToken(t)
	b, _ := newBackend(t)
	s := generatedSigner(t, b, f, "busy", hsm.ECDSAP256)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
				sig, err := s.Sign(ctx, msg)
				if err == nil {
					err = s.Public().Verify(msg, sig)
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d signature %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSharedContextAndClose(t *testing.T) {
	f := newToken(t)
	b, _ := newBackend(t)
	for _, name := range []string{"a", "b"} {
		if _, err := b.Generate(ctx, f.uri(name), hsm.ECDSAP256); err != nil {
			t.Fatal(err)
		}
	}
	sa, err := b.Signer(ctx, f.uri("a"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Signer(ctx, f.uri("b")+"&pool-size=4")
	if err != nil {
		t.Fatal(err)
	}
	// pool-size is not part of the sharing key: one login per token.
	b.mu.Lock()
	n := len(b.tokens)
	var refs int
	for _, tk := range b.tokens {
		refs = tk.refs
	}
	b.mu.Unlock()
	if n != 1 || refs != 2 {
		t.Fatalf("%d shared contexts with %d refs, want 1 with 2", n, refs)
	}
	sign(t, sa, []byte("a"))
	if err := sa.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sa.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := sa.Sign(ctx, []byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sign after Close: %v, want ErrClosed", err)
	}
	sign(t, sb, []byte("b still works"))
	sb.Close()
	b.mu.Lock()
	n = len(b.tokens)
	b.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d contexts left open after the last signer closed", n)
	}
}

func TestEnvironmentFallbacks(t *testing.T) {
	f := newToken(t)
	env := map[string]string{EnvModule: softhsm.module, EnvPIN: f.pin}
	b := New(hsm.Options{Getenv: func(k string) string { return env[k] }})
	defer b.Close()
	uri := "pkcs11:token=" + f.label + ";object=envkey"
	if _, err := b.Generate(ctx, uri, hsm.ECDSAP256); err != nil {
		t.Fatalf("Generate with module and PIN from the environment: %v", err)
	}
	// Without Getenv there is no fallback, even if the process has the variables.
	t.Setenv(EnvModule, softhsm.module)
	t.Setenv(EnvPIN, f.pin)
	b2 := New(hsm.Options{})
	defer b2.Close()
	if _, err := b2.PublicKey(ctx, uri); !errors.Is(err, ErrBadURI) {
		t.Fatalf("PublicKey without Getenv: %v, want ErrBadURI (no module)", err)
	}
}

func TestFaults(t *testing.T) {
	f := newToken(t)
	other := newToken(t)
	setup, _ := newBackend(t)
	if _, err := setup.Generate(ctx, f.uri("present"), hsm.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	setup.Close()
	badPIN := filepath.Join(t.TempDir(), "badpin")
	if err := os.WriteFile(badPIN, []byte("wrong-pin-9876\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mod := "?module-path=" + softhsm.module + "&pin-source=" + f.pinFile
	cases := []struct {
		name string
		uri  string
		is   error
		want []string // substrings of the error
	}{
		{"wrong PIN", "pkcs11:token=" + f.label + ";object=present?module-path=" + softhsm.module + "&pin-source=" + badPIN,
			ErrWrongPIN, []string{"CKR_PIN_INCORRECT", f.label}},
		{"wrong PIN value", "pkcs11:token=" + f.label + ";object=present?module-path=" + softhsm.module + "&pin-value=wrong-pin-9876",
			ErrWrongPIN, []string{"CKR_PIN_INCORRECT"}},
		{"missing token lists tokens", "pkcs11:token=nosuchtoken;object=present" + mod,
			ErrTokenNotFound, []string{"nosuchtoken", `"` + f.label + `"`, `"` + other.label + `"`}},
		{"missing object lists objects", "pkcs11:token=" + f.label + ";object=absent" + mod,
			ErrKeyNotFound, []string{"object=absent", `object="present"`}},
		{"missing id", "pkcs11:token=" + f.label + ";id=%FF%FF" + mod,
			ErrKeyNotFound, []string{`object="present"`}},
		{"module path wrong", "pkcs11:token=" + f.label + ";object=present?module-path=/nonexistent/libnope.so&pin-source=" + f.pinFile,
			ErrModuleNotFound, []string{"/nonexistent/libnope.so"}},
		{"module is not a library", "pkcs11:token=" + f.label + ";object=present?module-path=" + f.pinFile + "&pin-source=" + f.pinFile,
			ErrModuleLoad, []string{f.pinFile}},
		{"pin file missing", "pkcs11:token=" + f.label + ";object=present?module-path=" + softhsm.module + "&pin-source=/nonexistent/pin",
			os.ErrNotExist, []string{"/nonexistent/pin"}},
		{"no PIN at all", "pkcs11:token=" + f.label + ";object=present?module-path=" + softhsm.module,
			ErrBadURI, []string{"no PIN", EnvPIN}},
		{"no token", "pkcs11:object=present" + mod, ErrBadURI, []string{"names no token"}},
		{"no key", "pkcs11:token=" + f.label + mod, ErrBadURI, []string{"names no key"}},
		{"typo in attribute", "pkcs11:token=" + f.label + ";objet=present" + mod, ErrBadURI, []string{`"objet"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, logs := newBackend(t)
			s, err := b.Signer(ctx, tc.uri)
			if err == nil {
				s.Close()
				t.Fatal("Signer succeeded")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			mustContain(t, err, tc.want...)
			var logText []string
			for _, e := range logs.All() {
				logText = append(logText, fmt.Sprint(e.Message, e.ContextMap()))
			}
			mustNotLeak(t, f.pin, append(logText, err.Error())...)
			mustNotLeak(t, "wrong-pin-9876", append(logText, err.Error())...)
			if _, err := b.PublicKey(ctx, tc.uri); !errors.Is(err, tc.is) {
				t.Errorf("PublicKey error %q is not %v", err, tc.is)
			}
		})
	}
}

// TestDifferentPINRefused checks that a second PIN for a token already open
// in this process is refused rather than let in by the existing login
// (C_Login answers "already logged in" whatever the PIN).
func TestDifferentPINRefused(t *testing.T) {
	f := newToken(t)
	b, _ := newBackend(t)
	generatedSigner(t, b, f, "k", hsm.ECDSAP256)
	wrong := "pkcs11:token=" + f.label + ";object=k?module-path=" + softhsm.module + "&pin-value=not-the-pin"
	other, _ := newBackend(t)
	for name, be := range map[string]*Backend{"same backend": b, "another backend": other} {
		s, err := be.Signer(ctx, wrong)
		if err == nil {
			s.Close()
			t.Fatalf("%s: Signer with a wrong PIN while the token is open succeeded", name)
		}
		if !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("%s: Signer with another PIN while the token is open: %v, want ErrWrongPIN", name, err)
		}
		mustNotLeak(t, "not-the-pin", err.Error())
	}
	// The right PIN through another backend shares the login.
	s2, err := other.Signer(ctx, f.uri("k"))
	if err != nil {
		t.Fatalf("another backend with the right PIN: %v", err)
	}
	sign(t, s2, []byte("shared login"))
	s2.Close()
}

// TestRecovery breaks the token under a working signer and checks that the
// signer either recovers or fails with a clear error, never with a bad
// signature.
func TestRecovery(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(t *testing.T, b *Backend, f *fixture)
		recover bool
		is      error
		want    []string
	}{
		{
			name: "all sessions closed by another caller",
			breakIt: func(t *testing.T, b *Backend, f *fixture) {
				rawSlot(t, b, f, func(m *rawModule, slot uint) {
					if err := m.ctx.CloseAllSessions(slot); err != nil {
						t.Fatal(err)
					}
				})
			},
			recover: true,
		},
		{
			name: "logged out",
			breakIt: func(t *testing.T, b *Backend, f *fixture) {
				rawSlot(t, b, f, func(m *rawModule, slot uint) {
					sh, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
					if err != nil {
						t.Fatal(err)
					}
					defer m.ctx.CloseSession(sh)
					if err := m.ctx.Logout(sh); err != nil {
						t.Fatal(err)
					}
				})
			},
			recover: true,
		},
		{
			name: "token directory removed",
			breakIt: func(t *testing.T, b *Backend, f *fixture) {
				dir := tokenDirOf(t, f)
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			},
			recover: false,
			is:      ErrSessionLost,
			want:    []string{"token"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newToken(t)
			b, logs := newBackend(t)
			s := generatedSigner(t, b, f, "k", hsm.ECDSAP256)
			sign(t, s, []byte("before"))
			tc.breakIt(t, b, f)
			sig, err := s.Sign(ctx, []byte("after"))
			reopened := logs.FilterMessage("PKCS#11 session lost; reopening the token and trying again").Len()
			if tc.recover {
				if err != nil {
					t.Fatalf("Sign after the fault: %v, want recovery", err)
				}
				if err := s.Public().Verify([]byte("after"), sig); err != nil {
					t.Fatal(err)
				}
				if reopened != 1 {
					t.Fatalf("token reopened %d times, want 1 (was the fault real?)", reopened)
				}
				sign(t, s, []byte("and again"))
				return
			}
			if err == nil {
				t.Fatalf("Sign after the fault succeeded; want %v", tc.is)
			}
			if sig != nil {
				t.Fatal("Sign returned a signature with its error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			mustContain(t, err, tc.want...)
			mustNotLeak(t, f.pin, err.Error())
			t.Logf("error after the fault: %v", err)
		})
	}
}

// tokenDirOf finds the SoftHSM2 directory holding the fixture's token.
func tokenDirOf(t *testing.T, f *fixture) string {
	t.Helper()
	entries, err := os.ReadDir(softhsm.tokenDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(softhsm.tokenDir, e.Name(), "token.object"))
		if err == nil && strings.Contains(string(data), f.label) {
			return filepath.Join(softhsm.tokenDir, e.Name())
		}
	}
	t.Fatalf("no token directory for %s", f.label)
	return ""
}

// TestBackendClose checks that closing the backend stops its signers for
// good: no signature, and no token context opened again behind its back.
func TestBackendClose(t *testing.T) {
	f := newToken(t)
	b, logs := newBackend(t)
	s := generatedSigner(t, b, f, "k", hsm.ECDSAP256)
	sign(t, s, []byte("before"))
	opened := logs.FilterMessage("PKCS#11 token opened").Len()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(ctx, []byte("after")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sign after Backend.Close: %v, want ErrClosed", err)
	}
	if _, err := b.Signer(ctx, f.uri("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Signer after Backend.Close: %v, want ErrClosed", err)
	}
	if n := logs.FilterMessage("PKCS#11 token opened").Len(); n != opened {
		t.Fatalf("token opened %d more times after Backend.Close", n-opened)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
