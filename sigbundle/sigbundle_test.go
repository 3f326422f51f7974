package sigbundle_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/sigbundle"
)

var ctx = context.Background()

// artifact is the release every test approves.
var artifact = []byte("quorate sigbundle test release 1.0.0\n")

func artifactDigest() []byte {
	d := sha256.Sum256(artifact)
	return d[:]
}

// composite signs one statement over artifact with every signer, as the
// coordinator's composite does.
func composite(t testing.TB, signers ...keys.Signer) *attest.Envelope {
	t.Helper()
	st, err := attest.NewStatement(
		[]attest.Subject{{Name: "app.tar.gz", Digest: map[string]string{"sha256": hex.EncodeToString(artifactDigest())}}},
		attest.Predicate{
			Gate:      "production",
			Policy:    attest.PolicyRef{Version: 1, Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}},
			RequestID: "req-1",
			Created:   time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			Expires:   time.Date(2030, 1, 9, 3, 4, 5, 0, time.UTC),
		})
	if err != nil {
		t.Fatal(err)
	}
	env := attest.NewEnvelope(st)
	for _, s := range signers {
		if _, err := attest.Sign(ctx, env, s); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// marshal splits env and encodes each bundle.
func marshal(t *testing.T, env *attest.Envelope) [][]byte {
	t.Helper()
	bs, err := sigbundle.Split(env)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, b := range bs {
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// sigstoreVerify runs sigstore-go's verifier over one bundle with a trusted
// material holding only pub (under its TUF key ID, the bundle's hint) as
// loaded by load, no transparency log and no observer timestamp.
func sigstoreVerify(data []byte, pub *keys.PublicKey, load func(crypto.PublicKey) (signature.Verifier, error)) error {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return err
	}
	v, err := load(pub.Crypto())
	if err != nil {
		return err
	}
	tm := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{
		pub.ID(): root.NewExpiringKey(v, time.Time{}, time.Time{}),
	})
	sev, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return err
	}
	res, err := sev.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", artifactDigest()), verify.WithKey()))
	if err != nil {
		return err
	}
	if res.Statement == nil || res.Statement.PredicateType != attest.PredicateType {
		return errors.New("sigstore-go verified but returned no quorate statement")
	}
	return nil
}

// Verifier loaders a sigstore-go user might pick.
var (
	// loadWithSchemeHash is signature.LoadVerifier with the hash the key's
	// TUF scheme uses: what a user writes for a key of known scheme.
	loadWithSchemeHash = func(hash crypto.Hash) func(crypto.PublicKey) (signature.Verifier, error) {
		return func(p crypto.PublicKey) (signature.Verifier, error) { return signature.LoadVerifier(p, hash) }
	}
	// loadDefault is sigstore's algorithm registry default for the key.
	loadDefault = func(p crypto.PublicKey) (signature.Verifier, error) { return signature.LoadDefaultVerifier(p) }
	// loadRSAPSS asks for RSASSA-PSS explicitly.
	loadRSAPSS = func(p crypto.PublicKey) (signature.Verifier, error) {
		return signature.LoadVerifierWithOpts(p, options.WithHash(crypto.SHA256), options.WithRSAPSS(&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}))
	}
)

// TestSigstoreGoVerifiesEachBundle measures which of quorate's key types
// sigstore-go's verify package accepts in a key-signed bundle, with which
// verifier loader. The expectations are the measured results: RSA keys
// verify only when the caller asks for RSASSA-PSS, since sigstore's loaders
// default RSA to PKCS#1 v1.5 (as cosign's --key does).
func TestSigstoreGoVerifiesEachBundle(t *testing.T) {
	cases := []struct {
		name   string
		kt     hsm.KeyType
		load   func(crypto.PublicKey) (signature.Verifier, error)
		accept bool
	}{
		{"ecdsa-p256 with LoadVerifier sha256", hsm.ECDSAP256, loadWithSchemeHash(crypto.SHA256), true},
		{"ecdsa-p256 with LoadDefaultVerifier", hsm.ECDSAP256, loadDefault, true},
		{"ecdsa-p384 with LoadVerifier sha384", hsm.ECDSAP384, loadWithSchemeHash(crypto.SHA384), true},
		{"ecdsa-p384 with LoadDefaultVerifier", hsm.ECDSAP384, loadDefault, true},
		{"ecdsa-p384 with LoadVerifier sha256 refused", hsm.ECDSAP384, loadWithSchemeHash(crypto.SHA256), false},
		{"ed25519 with LoadVerifier", hsm.Ed25519, loadWithSchemeHash(crypto.SHA256), true},
		{"ed25519 with LoadDefaultVerifier", hsm.Ed25519, loadDefault, true},
		{"rsa-3072 pss with explicit RSASSA-PSS", hsm.RSA3072, loadRSAPSS, true},
		{"rsa-2048 pss with explicit RSASSA-PSS", hsm.RSA2048, loadRSAPSS, true},
		{"rsa-3072 pss with LoadVerifier refused (PKCS1v15)", hsm.RSA3072, loadWithSchemeHash(crypto.SHA256), false},
		{"rsa-3072 pss with LoadDefaultVerifier refused (PKCS1v15)", hsm.RSA3072, loadDefault, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testkeys.Signer(t, tc.kt)
			other := testkeys.Signer(t, hsm.ECDSAP256)
			env := composite(t, other, s)
			bs := marshal(t, env)
			err := sigstoreVerify(bs[1], s.Public(), tc.load)
			if tc.accept && err != nil {
				t.Fatalf("sigstore-go refused the %s bundle: %v\n%s", tc.kt, err, bs[1])
			}
			if !tc.accept && err == nil {
				t.Fatalf("sigstore-go accepted the %s bundle with this loader; the documented limit is wrong", tc.kt)
			}
			// Another signer's bundle never verifies with this key.
			if err := sigstoreVerify(bs[0], s.Public(), tc.load); err == nil {
				t.Fatal("sigstore-go accepted another signer's bundle under this key")
			}
		})
	}
}

// TestSigstoreGoRefuses: tampered bundles and the unsplit composite are
// refused by sigstore-go, and by Parse/Assemble.
func TestSigstoreGoRefuses(t *testing.T) {
	s := testkeys.Signer(t, hsm.ECDSAP256)
	second := testkeys.Signer(t, hsm.Ed25519)
	env := composite(t, s, second)
	good := marshal(t, env)[0]
	load := loadWithSchemeHash(crypto.SHA256)
	if err := sigstoreVerify(good, s.Public(), load); err != nil {
		t.Fatalf("untouched bundle: %v", err)
	}
	payload, _ := attest.DecodeBase64(env.Payload)
	otherPayload := bytes.Replace(payload, []byte("req-1"), []byte("req-2"), 1)
	sig, _ := attest.DecodeBase64(env.Signatures[0].Sig)
	flipped := slices.Clone(sig)
	flipped[len(flipped)/2] ^= 1
	b64 := base64.StdEncoding.EncodeToString
	cases := []struct {
		name string
		edit func(string) string
		// parseErr: Parse refuses it; otherwise Assemble with the key must.
		parseErr bool
	}{
		{"payload changed", func(s string) string {
			return strings.Replace(s, b64(payload), b64(otherPayload), 1)
		}, false},
		{"signature byte flipped", func(s string) string {
			return strings.Replace(s, b64(sig), b64(flipped), 1)
		}, false},
		{"payload type changed", func(s string) string {
			return strings.Replace(s, `"application/vnd.in-toto+json"`, `"application/json"`, 1)
		}, true},
		{"hint names another signer", func(s string) string {
			return strings.Replace(s, `"hint": "`+env.Signatures[0].KeyID, `"hint": "`+env.Signatures[1].KeyID, 1)
		}, false},
		{"keyid set and differs from the hint", func(s string) string {
			return strings.Replace(s, `"sig": "`, `"keyid": "`+env.Signatures[1].KeyID+`", "sig": "`, 1)
		}, true},
		{"hint not a TUF key ID", func(s string) string {
			return strings.Replace(s, `"hint": "`+env.Signatures[0].KeyID, `"hint": "../x`, 1)
		}, true},
		{"composite's second signature added", func(s string) string {
			return strings.Replace(s, `"signatures": [`, `"signatures": [{"sig": "`+env.Signatures[1].Sig+`", "keyid": "`+env.Signatures[0].KeyID+`"},`, 1)
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := []byte(tc.edit(string(good)))
			if bytes.Equal(bad, good) {
				t.Fatal("edit changed nothing")
			}
			if err := sigstoreVerify(bad, s.Public(), load); err == nil {
				t.Fatal("sigstore-go accepted the tampered bundle")
			}
			b, err := sigbundle.Parse(bad, attest.Limits{})
			if tc.parseErr {
				if err == nil {
					t.Fatal("Parse accepted it")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			_, err = sigbundle.Assemble([]sigbundle.File{{Name: "x" + sigbundle.Extension, Bundle: b}}, sigbundle.KeysByID(s.Public(), second.Public()))
			if !errors.Is(err, keys.ErrBadSignature) {
				t.Fatalf("Assemble = %v, want ErrBadSignature", err)
			}
		})
	}
}

// TestBundleShape pins what goes where: media type, hint = the composite's
// keyid, the composite's payload and signature bytes, no DSSE keyid, no tlog
// entries and no timestamps.
func TestBundleShape(t *testing.T) {
	s := testkeys.Signer(t, hsm.ECDSAP256)
	env := composite(t, s)
	data := marshal(t, env)[0]
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	if b.MediaType != sigbundle.MediaType || sigbundle.MediaType != "application/vnd.dev.sigstore.bundle.v0.3+json" {
		t.Fatalf("media type %q", b.MediaType)
	}
	if v, _ := b.Version(); v != "v0.3" {
		t.Fatalf("sigstore-go reads version %q", v)
	}
	if h := b.VerificationMaterial.GetPublicKey().GetHint(); h != s.Public().ID() {
		t.Fatalf("hint %q, want the TUF key ID %s", h, s.Public().ID())
	}
	if len(b.VerificationMaterial.TlogEntries) != 0 || b.VerificationMaterial.TimestampVerificationData != nil {
		t.Fatal("bundle carries tlog entries or timestamps")
	}
	e := b.GetDsseEnvelope()
	payload, _ := attest.DecodeBase64(env.Payload)
	sig, _ := attest.DecodeBase64(env.Signatures[0].Sig)
	if !bytes.Equal(e.Payload, payload) || e.PayloadType != env.PayloadType || len(e.Signatures) != 1 ||
		!bytes.Equal(e.Signatures[0].Sig, sig) || e.Signatures[0].Keyid != "" {
		t.Fatalf("envelope differs from the composite's:\n%s", data)
	}
	// Stable encoding: the same bundle, the same bytes.
	if again := marshal(t, env)[0]; !bytes.Equal(again, data) {
		t.Fatal("Marshal is not stable")
	}
}

// TestRoundTrip: split to a directory, read back, assemble: the composite's
// signatures, and each verifies with quorate's keys.
func TestRoundTrip(t *testing.T) {
	signers := []keys.Signer{
		testkeys.Signer(t, hsm.ECDSAP256), testkeys.Signer(t, hsm.ECDSAP384),
		testkeys.Signer(t, hsm.Ed25519), testkeys.Signer(t, hsm.RSA3072),
	}
	env := composite(t, signers...)
	bs, err := sigbundle.Split(env)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundles")
	paths, err := sigbundle.WriteDir(dir, bs)
	if err != nil || len(paths) != len(signers) {
		t.Fatalf("WriteDir: %v, %d files", err, len(paths))
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a bundle"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := sigbundle.ReadDir(dir, attest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var pubs []*keys.PublicKey
	for _, s := range signers {
		pubs = append(pubs, s.Public())
	}
	a, err := sigbundle.Assemble(files, sigbundle.KeysByID(pubs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Collapsed) != 0 || len(a.Unknown) != 0 {
		t.Fatalf("collapsed %v, unknown %v", a.Collapsed, a.Unknown)
	}
	if a.Envelope.Payload != env.Payload || a.Envelope.PayloadType != env.PayloadType {
		t.Fatal("assembled payload differs")
	}
	if !sameSignatures(a.Envelope.Signatures, env.Signatures) {
		t.Fatalf("assembled signatures differ:\n got %v\nwant %v", a.Envelope.Signatures, env.Signatures)
	}
	pae, _ := attest.PAE(a.Envelope)
	for _, s := range a.Envelope.Signatures {
		k, _ := sigbundle.KeysByID(pubs...)(s.KeyID)
		raw, _ := attest.DecodeBase64(s.Sig)
		if err := k.Verify(pae, raw); err != nil {
			t.Fatalf("assembled signature of %s: %v", s.KeyID, err)
		}
	}
	// Without a key lookup: same envelope, nothing checked.
	a2, err := sigbundle.Assemble(files, nil)
	if err != nil || !sameSignatures(a2.Envelope.Signatures, env.Signatures) {
		t.Fatalf("Assemble without keys: %v", err)
	}
}

func sameSignatures(a, b []attest.Signature) bool {
	key := func(s attest.Signature) string { return s.KeyID + "/" + s.Sig }
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		as[i] = key(a[i])
	}
	for i := range b {
		bs[i] = key(b[i])
	}
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}

// alias lists a P-256 signer's key under the older TUF key type, which
// gives the same key another key ID.
type alias struct {
	keys.Signer
	pub *keys.PublicKey
}

func (a alias) Public() *keys.PublicKey { return a.pub }

func aliasOf(t *testing.T, s keys.Signer) alias {
	rec := s.Public().TUF()
	rec.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT
	pub, err := keys.FromTUF(rec)
	if err != nil || pub.ID() == s.Public().ID() || pub.Identity() != s.Public().Identity() {
		t.Fatalf("alias: %v", err)
	}
	return alias{Signer: s, pub: pub}
}

// TestAssembleCases covers duplicates, unknown keys and payload mismatch.
func TestAssembleCases(t *testing.T) {
	a := testkeys.Signer(t, hsm.ECDSAP256)
	b := testkeys.Signer(t, hsm.Ed25519)
	aa := aliasOf(t, a)
	env := composite(t, a, b, aa) // one key under two key IDs
	bs, err := sigbundle.Split(env)
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string, bu *sigbundle.Bundle) sigbundle.File { return sigbundle.File{Name: name, Bundle: bu} }
	lookup := sigbundle.KeysByID(a.Public(), b.Public(), aa.Public())

	t.Run("same key under two key IDs collapses", func(t *testing.T) {
		got, err := sigbundle.Assemble([]sigbundle.File{file("1", bs[0]), file("2", bs[1]), file("3", bs[2])}, lookup)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Envelope.Signatures) != 2 || len(got.Collapsed) != 1 || got.Collapsed[0].File != "3" || got.Collapsed[0].KeptFile != "1" ||
			got.Collapsed[0].Identity != a.Public().Identity().String() {
			t.Fatalf("got %d signatures, collapsed %+v", len(got.Envelope.Signatures), got.Collapsed)
		}
	})
	t.Run("same bundle twice collapses", func(t *testing.T) {
		got, err := sigbundle.Assemble([]sigbundle.File{file("1", bs[1]), file("copy", bs[1])}, lookup)
		if err != nil || len(got.Envelope.Signatures) != 1 || len(got.Collapsed) != 1 {
			t.Fatalf("%v, %+v", err, got)
		}
	})
	t.Run("same bundle twice without keys collapses by key ID", func(t *testing.T) {
		got, err := sigbundle.Assemble([]sigbundle.File{file("1", bs[1]), file("copy", bs[1])}, nil)
		if err != nil || len(got.Envelope.Signatures) != 1 || len(got.Collapsed) != 1 {
			t.Fatalf("%v, %+v", err, got)
		}
	})
	t.Run("unknown key kept and listed", func(t *testing.T) {
		got, err := sigbundle.Assemble([]sigbundle.File{file("1", bs[0]), file("2", bs[1])}, sigbundle.KeysByID(a.Public()))
		if err != nil || len(got.Envelope.Signatures) != 2 || !slices.Equal(got.Unknown, []string{"2"}) {
			t.Fatalf("%v, %+v", err, got)
		}
	})
	t.Run("another payload refused", func(t *testing.T) {
		other := composite(t, b)
		other.Payload = base64.StdEncoding.EncodeToString([]byte(`{"other": true}`))
		ob, err := sigbundle.Split(other)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sigbundle.Assemble([]sigbundle.File{file("1", bs[0]), file("2", ob[0])}, nil)
		if !errors.Is(err, sigbundle.ErrPayloadMismatch) {
			t.Fatalf("got %v, want ErrPayloadMismatch", err)
		}
	})
	t.Run("no bundle refused", func(t *testing.T) {
		if _, err := sigbundle.Assemble(nil, lookup); err == nil {
			t.Fatal("assembled nothing")
		}
	})
}

// TestSplitRefuses: what cannot become a bundle.
func TestSplitRefuses(t *testing.T) {
	s := testkeys.Signer(t, hsm.ECDSAP256)
	cases := []struct {
		name string
		edit func(*attest.Envelope)
	}{
		{"no signature", func(e *attest.Envelope) { e.Signatures = nil }},
		{"keyid missing", func(e *attest.Envelope) { e.Signatures[0].KeyID = "" }},
		{"keyid not a TUF key ID", func(e *attest.Envelope) { e.Signatures[0].KeyID = "../../etc/passwd" }},
		{"same keyid twice", func(e *attest.Envelope) { e.Signatures = append(e.Signatures, e.Signatures[0]) }},
		{"empty sig", func(e *attest.Envelope) { e.Signatures[0].Sig = "" }},
		{"another payload type", func(e *attest.Envelope) { e.PayloadType = "application/json" }},
		{"payload not base64", func(e *attest.Envelope) { e.Payload = "%%%" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := composite(t, s)
			tc.edit(env)
			if _, err := sigbundle.Split(env); err == nil {
				t.Fatal("Split accepted it")
			}
		})
	}
}

// TestParseRefuses: bundles of other shapes.
func TestParseRefuses(t *testing.T) {
	s := testkeys.Signer(t, hsm.ECDSAP256)
	good := string(marshal(t, composite(t, s))[0])
	cases := []struct {
		name string
		data string
	}{
		{"v0.2 media type", strings.Replace(good, sigbundle.MediaType, "application/vnd.dev.sigstore.bundle+json;version=0.2", 1)},
		{"unknown field", strings.Replace(good, `"mediaType"`, `"surprise": 1, "mediaType"`, 1)},
		{"duplicate field", strings.Replace(good, `"mediaType"`, `"mediaType": "x", "mediaType"`, 1)},
		{"certificate material", strings.Replace(good, `"publicKey": {`, `"certificate": {"rawBytes": "AAAA"}, "x": {`, 1)},
		{"message signature", `{"mediaType": "` + sigbundle.MediaType + `", "verificationMaterial": {"publicKey": {"hint": "x"}}, "messageSignature": {"signature": "AAAA"}}`},
		{"not JSON", "nope"},
		{"no signature", strings.Replace(good, `"signatures": [`, `"signatures": [], "x": [`, 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data == good {
				t.Fatal("edit changed nothing")
			}
			if _, err := sigbundle.Parse([]byte(tc.data), attest.Limits{}); err == nil {
				t.Fatal("Parse accepted it")
			}
		})
	}
	if _, err := sigbundle.Parse([]byte(good), attest.Limits{MaxBytes: 100}); !errors.Is(err, attest.ErrTooLarge) {
		t.Fatalf("over the size limit: %v", err)
	}
	compat := strings.Replace(good, sigbundle.MediaType, "application/vnd.dev.sigstore.bundle+json;version=0.3", 1)
	if _, err := sigbundle.Parse([]byte(compat), attest.Limits{}); err != nil {
		t.Fatalf("older spelling of v0.3: %v", err)
	}
}

// TestSigstoreGoRefusesTUFKeyIDInEnvelope measures why the bundle's DSSE
// signature carries no keyid: with the TUF key ID there (equal to the hint,
// as the bundle specification words it), sigstore-go's DSSE check computes
// its own key ID for the hinted key and skips the signature. quorate reads
// such a bundle all the same.
func TestSigstoreGoRefusesTUFKeyIDInEnvelope(t *testing.T) {
	s := testkeys.Signer(t, hsm.ECDSAP256)
	env := composite(t, s)
	good := string(marshal(t, env)[0])
	withKeyID := strings.Replace(good, `"sig": "`, `"keyid": "`+env.Signatures[0].KeyID+`", "sig": "`, 1)
	if withKeyID == good {
		t.Fatal("edit changed nothing")
	}
	if err := sigstoreVerify([]byte(withKeyID), s.Public(), loadWithSchemeHash(crypto.SHA256)); err == nil {
		t.Fatal("sigstore-go now accepts a TUF keyid in the DSSE signature: the package documentation's reason is out of date")
	}
	b, err := sigbundle.Parse([]byte(withKeyID), attest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := sigbundle.Assemble([]sigbundle.File{{Name: "a", Bundle: b}}, sigbundle.KeysByID(s.Public()))
	if err != nil || !sameSignatures(a.Envelope.Signatures, env.Signatures) {
		t.Fatalf("Assemble: %v", err)
	}
}

// TestPolicyDoesNotDependOnBundles keeps the Sigstore bundle format out of
// the verification library that deploy gates embed.
func TestPolicyDoesNotDependOnBundles(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/quorate-dev/quorate/policy").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/quorate-dev/quorate/sigbundle" || strings.HasPrefix(dep, "github.com/sigstore/sigstore-go/") ||
			strings.HasPrefix(dep, "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/") {
			t.Errorf("package policy depends on %s", dep)
		}
	}
}
