package keys_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
)

var allTypes = []struct {
	kt     hsm.KeyType
	scheme string
}{
	{hsm.ECDSAP256, keys.SchemeECDSAP256},
	{hsm.ECDSAP384, keys.SchemeECDSAP384},
	{hsm.Ed25519, keys.SchemeEd25519},
	{hsm.RSA3072, keys.SchemeRSAPSS},
}

func TestParseRoundTrips(t *testing.T) {
	for _, tc := range allTypes {
		t.Run(string(tc.kt), func(t *testing.T) {
			priv := testkeys.Private(t, tc.kt)
			k := testkeys.Public(t, priv)
			if k.Scheme() != tc.scheme {
				t.Fatalf("scheme %s, want %s", k.Scheme(), tc.scheme)
			}
			fromPEM, err := keys.ParsePEM(k.PEM())
			if err != nil {
				t.Fatal(err)
			}
			tufJSON, err := json.Marshal(k.TUF())
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := keys.Parse(tufJSON)
			if err != nil {
				t.Fatalf("TUF JSON %s: %v", tufJSON, err)
			}
			fromAuto, err := keys.Parse(append([]byte("\n  "), k.PEM()...))
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string]*keys.PublicKey{"PEM": fromPEM, "TUF JSON": fromJSON, "Parse": fromAuto} {
				if got.ID() != k.ID() || got.Identity() != k.Identity() {
					t.Errorf("%s: ID %s identity %s, want %s %s", name, got.ID(), got.Identity(), k.ID(), k.Identity())
				}
			}
		})
	}
}

func TestParseRSAPKCS1(t *testing.T) {
	priv := testkeys.Private(t, hsm.RSA3072).(*rsa.PrivateKey)
	data := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)})
	k, err := keys.ParsePEM(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := testkeys.Public(t, priv); k.ID() != want.ID() {
		t.Errorf("ID %s, want %s", k.ID(), want.ID())
	}
	if !strings.Contains(k.Describe(), "3072 bits") {
		t.Errorf("Describe %q", k.Describe())
	}
}

func TestKeyIDMatchesGoTUF(t *testing.T) {
	for _, kt := range []hsm.KeyType{hsm.ECDSAP256, hsm.Ed25519, hsm.RSA3072} {
		t.Run(string(kt), func(t *testing.T) {
			priv := testkeys.Private(t, kt)
			rec, err := metadata.KeyFromPublicKey(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			want, err := rec.ID()
			if err != nil {
				t.Fatal(err)
			}
			if got := testkeys.Public(t, priv).ID(); got != want {
				t.Errorf("key ID %s, go-tuf computes %s", got, want)
			}
			fromTUF, err := keys.FromTUF(rec)
			if err != nil || fromTUF.ID() != want {
				t.Errorf("FromTUF of go-tuf's record: %v, %v", fromTUF, err)
			}
		})
	}
}

func TestIdentityIsTheKeyNotTheRecord(t *testing.T) {
	k := testkeys.Public(t, testkeys.Private(t, hsm.ECDSAP256))
	compat := k.TUF()
	compat.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT // "ecdsa-sha2-nistp256"
	k2, err := keys.FromTUF(compat)
	if err != nil {
		t.Fatal(err)
	}
	if k.TUF().Type != keys.TypeECDSA {
		t.Fatalf("type %q", k.TUF().Type)
	}
	if k2.ID() == k.ID() {
		t.Fatal("two records of the key share an ID; the test proves nothing")
	}
	if k2.Identity() != k.Identity() {
		t.Errorf("identities differ: %s, %s", k.Identity(), k2.Identity())
	}
	other := testkeys.Public(t, testkeys.Private(t, hsm.ECDSAP256))
	if other.Identity() == k.Identity() {
		t.Error("two keys share an identity")
	}
}

func TestParseRejects(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := func(pub crypto.PublicKey) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	p256 := testkeys.Public(t, testkeys.Private(t, hsm.ECDSAP256))
	ed := testkeys.Public(t, testkeys.Private(t, hsm.Ed25519))
	rsaKey := testkeys.Public(t, testkeys.Private(t, hsm.RSA3072))
	record := func(typ, scheme, pub string) string {
		data, err := json.Marshal(map[string]any{"keytype": typ, "scheme": scheme, "keyval": map[string]string{"public": pub}})
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	tests := []struct {
		name, in, want string
	}{
		{"RSA below 2048 bits", pubPEM(&small.PublicKey), "RSA key of 1024 bits (minimum 2048)"},
		{"RSA below 2048 bits as TUF JSON", record("rsa", "rsassa-pss-sha256", pubPEM(&small.PublicKey)), "RSA key of 1024 bits"},
		{"ECDSA P-521", pubPEM(&p521.PublicKey), "ECDSA curve P-521"},
		{"private key given as public", string(testkeys.PEM(t, testkeys.Private(t, hsm.ECDSAP256))), "PEM block is a private key"},
		{"P-256 key with the P-384 scheme", record("ecdsa", "ecdsa-sha2-nistp384", string(p256.PEM())), "ECDSA curve P-256 with scheme"},
		{"ECDSA key with the Ed25519 scheme", record("ecdsa", "ed25519", string(p256.PEM())), "with scheme \"ed25519\""},
		{"ECDSA key recorded as RSA", record("rsa", "rsassa-pss-sha256", string(p256.PEM())), `ECDSA key recorded as type "rsa"`},
		{"RSA key recorded as ECDSA", record("ecdsa", "ecdsa-sha2-nistp256", string(rsaKey.PEM())), "RSA key with type \"ecdsa\""},
		{"RSA key with a PKCS#1 v1.5 scheme", record("rsa", "rsa-pkcs1v15-sha256", string(rsaKey.PEM())), "want rsa/rsassa-pss-sha256"},
		{"Ed25519 key with the ECDSA scheme", record("ed25519", "ecdsa-sha2-nistp256", ed.TUF().Value.PublicKey), "key type ed25519 with scheme"},
		{"Ed25519 key recorded as ECDSA", record("ecdsa", "ecdsa-sha2-nistp256", string(ed.PEM())), "Ed25519 key recorded as type \"ecdsa\""},
		{"Ed25519 key of the wrong length", record("ed25519", "ed25519", "abcd"), "not 32 hex-encoded bytes"},
		{"unknown key type", record("dsa", "dsa", string(p256.PEM())), `key type "dsa"`},
		{"garbage", "hello, world", "no PEM block found"},
		{"empty", "", "no PEM block found"},
		{"garbage PEM body", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "parsing PUBLIC KEY"},
		{"other PEM block", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", `PEM block of type "CERTIFICATE REQUEST"`},
		{"garbage JSON", `{"keytype":`, "TUF key JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := keys.Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted as %s (%s)", k.ID(), k.Describe())
			}
			if !errors.Is(err, keys.ErrUnsupportedKey) {
				t.Errorf("error %q is not ErrUnsupportedKey", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	msg := []byte("DSSEv1 28 application/vnd.in-toto+json 2 {}")
	for _, tc := range allTypes {
		t.Run(string(tc.kt), func(t *testing.T) {
			s := testkeys.Signer(t, tc.kt)
			k := s.Public()
			sig, err := s.Sign(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Verify(msg, sig); err != nil {
				t.Fatalf("good signature refused: %v", err)
			}
			if err := k.VerifyDigest(k.Digest(msg), sig); err != nil {
				t.Fatalf("good signature refused over its digest: %v", err)
			}
			otherSig, err := testkeys.Signer(t, hsm.ECDSAP256).Sign(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			flipped := append([]byte(nil), sig...)
			flipped[len(flipped)/2] ^= 0x01
			tampered := append([]byte(nil), msg...)
			tampered[0] ^= 0x20
			bad := map[string]struct{ msg, sig []byte }{
				"tampered message":      {tampered, sig},
				"flipped signature bit": {msg, flipped},
				"truncated signature":   {msg, sig[:len(sig)-1]},
				"empty signature":       {msg, nil},
				"another key's":         {msg, otherSig},
				"signature of the hash": {k.Digest(msg), sig},
			}
			if tc.kt == hsm.Ed25519 {
				delete(bad, "signature of the hash") // Ed25519 signs the message itself
			}
			for name, b := range bad {
				if err := k.Verify(b.msg, b.sig); !errors.Is(err, keys.ErrBadSignature) {
					t.Errorf("%s: error %v, want ErrBadSignature", name, err)
				}
			}
		})
	}
}
