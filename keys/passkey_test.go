package keys_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
)

const (
	testRPID   = "approve.example.com"
	testOrigin = "https://approve.example.com"
)

// softPasskey is a software WebAuthn authenticator: it makes assertions as
// a browser and authenticator would, with knobs to get each field wrong.
type softPasskey struct {
	priv   *ecdsa.PrivateKey
	credID []byte
}

func newSoftPasskey(t testing.TB) *softPasskey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softPasskey{priv: priv, credID: id}
}

func (s *softPasskey) key(t testing.TB, uv string, origins ...string) *keys.PublicKey {
	t.Helper()
	if len(origins) == 0 {
		origins = []string{testOrigin}
	}
	k, err := keys.NewPasskey(&s.priv.PublicKey, keys.Passkey{CredentialID: s.credID, RPID: testRPID, Origins: origins, UserVerification: uv})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ceremony is what the browser and authenticator put in one assertion.
type ceremony struct {
	rpID       string
	flags      byte
	clientData string // a JSON object; built from the fields below when empty
	typ        string
	challenge  []byte // the message digest the challenge encodes
	origin     string
	extra      string // raw members appended to clientDataJSON, e.g. `,"crossOrigin":true`
}

func (s *softPasskey) assert(t testing.TB, c ceremony) *keys.Assertion {
	t.Helper()
	if c.rpID == "" {
		c.rpID = testRPID
	}
	if c.typ == "" {
		c.typ = "webauthn.get"
	}
	if c.origin == "" {
		c.origin = testOrigin
	}
	cd := c.clientData
	if cd == "" {
		cd = `{"type":"` + c.typ + `","challenge":"` + keys.Challenge(c.challenge) + `","origin":"` + c.origin + `"` + c.extra + `}`
	}
	rpHash := sha256.Sum256([]byte(c.rpID))
	ad := append(rpHash[:], c.flags, 0, 0, 0, 7)
	cdHash := sha256.Sum256([]byte(cd))
	msg := sha256.Sum256(append(append([]byte{}, ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, msg[:])
	if err != nil {
		t.Fatal(err)
	}
	return &keys.Assertion{AuthenticatorData: ad, ClientDataJSON: []byte(cd), Signature: sig}
}

// testPAE returns the PAE of a real release-approval statement.
func testPAE(t testing.TB, requestID string) []byte {
	t.Helper()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st, err := attest.NewStatement(
		[]attest.Subject{{Name: "app.tar.gz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		attest.Predicate{Gate: "production", Policy: attest.PolicyRef{Version: 3, Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}},
			RequestID: requestID, Created: now, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	pae, err := attest.PAE(attest.NewEnvelope(st))
	if err != nil {
		t.Fatal(err)
	}
	return pae
}

const (
	up = 0x01
	uv = 0x04
	be = 0x08
	bs = 0x10
)

func TestPasskeyAccepts(t *testing.T) {
	pk := newSoftPasskey(t)
	pae := testPAE(t, "req-1")
	digest := sha256.Sum256(pae)
	for _, tc := range []struct {
		name string
		key  *keys.PublicKey
		c    ceremony
	}{
		{"user verified", pk.key(t, ""), ceremony{flags: up | uv}},
		{"backed-up passkey", pk.key(t, ""), ceremony{flags: up | uv | be | bs}},
		{"uv preferred without UV", pk.key(t, keys.UserVerificationPreferred), ceremony{flags: up}},
		{"second allowed origin", pk.key(t, "", testOrigin, "https://console.approve.example.com:8443"), ceremony{flags: up | uv, origin: "https://console.approve.example.com:8443"}},
		{"crossOrigin false", pk.key(t, ""), ceremony{flags: up | uv, extra: `,"crossOrigin":false`}},
		{"unknown clientData member", pk.key(t, ""), ceremony{flags: up | uv, extra: `,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template"`}},
		{"localhost origin", mustPasskey(t, pk, "localhost", "http://localhost:8080"), ceremony{flags: up | uv, rpID: "localhost", origin: "http://localhost:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.challenge = digest[:]
			sig := pk.assert(t, tc.c).Marshal()
			if err := tc.key.Verify(pae, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			// The path the coordinator and verifier take: one digest per hash.
			if err := tc.key.VerifyDigest(tc.key.Digest(pae), sig); err != nil {
				t.Fatalf("VerifyDigest: %v", err)
			}
		})
	}
}

func mustPasskey(t *testing.T, pk *softPasskey, rpID string, origins ...string) *keys.PublicKey {
	t.Helper()
	k, err := keys.NewPasskey(&pk.priv.PublicKey, keys.Passkey{CredentialID: pk.credID, RPID: rpID, Origins: origins})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPasskeyAttacks(t *testing.T) {
	pk, other := newSoftPasskey(t), newSoftPasskey(t)
	key := pk.key(t, "")
	pae := testPAE(t, "req-1")
	digest := sha256.Sum256(pae)
	otherDigest := sha256.Sum256(testPAE(t, "req-2"))
	good := ceremony{flags: up | uv, challenge: digest[:]}
	with := func(f func(*ceremony)) ceremony { c := good; f(&c); return c }
	sign := func(c ceremony) []byte { return pk.assert(t, c).Marshal() }
	valid := pk.assert(t, good)
	validEnc := valid.Marshal()
	enc := base64.RawURLEncoding.EncodeToString
	wire := func(ad, cd, sig string) []byte {
		return []byte(`{"authenticatorData":"` + ad + `","clientDataJSON":"` + cd + `","signature":"` + sig + `"}`)
	}
	adB64, cdB64, sigB64 := enc(valid.AuthenticatorData), enc(valid.ClientDataJSON), enc(valid.Signature)
	resign := func(a *keys.Assertion) []byte { // re-signs a modified assertion with the right key
		cdHash := sha256.Sum256(a.ClientDataJSON)
		msg := sha256.Sum256(append(append([]byte{}, a.AuthenticatorData...), cdHash[:]...))
		s, err := ecdsa.SignASN1(rand.Reader, pk.priv, msg[:])
		if err != nil {
			t.Fatal(err)
		}
		a.Signature = s
		return a.Marshal()
	}

	for _, tc := range []struct {
		name string
		key  *keys.PublicKey
		sig  []byte
		want string // part of the error
	}{
		{"assertion for another request's PAE", key, sign(with(func(c *ceremony) { c.challenge = otherDigest[:] })), "challenge is not SHA-256 of this message"},
		{"assertion over the raw payload digest", key, sign(with(func(c *ceremony) { d := sha256.Sum256([]byte("payload")); c.challenge = d[:] })), "challenge"},
		{"another origin", key, sign(with(func(c *ceremony) { c.origin = "https://evil.example.net" })), "origin"},
		{"origin with trailing slash", key, sign(with(func(c *ceremony) { c.origin = testOrigin + "/" })), "origin"},
		{"origin in upper case", key, sign(with(func(c *ceremony) { c.origin = strings.ToUpper(testOrigin) })), "origin"},
		{"another rpId", key, sign(with(func(c *ceremony) { c.rpID = "example.com" })), "rpIdHash"},
		{"UP missing", key, sign(with(func(c *ceremony) { c.flags = uv })), "user presence"},
		{"UV missing when required", key, sign(with(func(c *ceremony) { c.flags = up })), "user verification"},
		{"BS without BE", key, sign(with(func(c *ceremony) { c.flags = up | uv | bs })), "backup state"},
		{"reserved flag", key, sign(with(func(c *ceremony) { c.flags = up | uv | 0x02 })), "reserved"},
		{"attested credential data flag", key, sign(with(func(c *ceremony) { c.flags = up | uv | 0x40 })), "attested"},
		{"extension flag", key, sign(with(func(c *ceremony) { c.flags = up | uv | 0x80 })), "extension"},
		{"credential of another key", key, other.assert(t, good).Marshal(), "does not verify"},
		{"assertion of this key under another key", other.key(t, ""), validEnc, "does not verify"},
		{"type webauthn.create", key, sign(with(func(c *ceremony) { c.typ = "webauthn.create" })), "type"},
		{"type missing", key, sign(with(func(c *ceremony) {
			c.clientData = `{"challenge":"` + keys.Challenge(digest[:]) + `","origin":"` + testOrigin + `"}`
		})), "no type"},
		{"crossOrigin true", key, sign(with(func(c *ceremony) { c.extra = `,"crossOrigin":true` })), "crossOrigin is true"},
		{"crossOrigin as a string", key, sign(with(func(c *ceremony) { c.extra = `,"crossOrigin":"true"` })), "crossOrigin is not a boolean"},
		{"crossOrigin in another case", key, sign(with(func(c *ceremony) { c.extra = `,"crossorigin":true` })), "case variant"},
		{"topOrigin", key, sign(with(func(c *ceremony) { c.extra = `,"topOrigin":"https://evil.example.net"` })), "topOrigin"},
		{"token binding present", key, sign(with(func(c *ceremony) { c.extra = `,"tokenBinding":{"status":"present","id":"AAAA"}` })), "tokenBinding"},
		{"duplicate challenge in clientDataJSON", key, sign(with(func(c *ceremony) {
			c.extra = `,"challenge":"` + keys.Challenge(otherDigest[:]) + `"`
		})), "clientDataJSON"},
		{"duplicate origin in clientDataJSON", key, sign(with(func(c *ceremony) { c.extra = `,"origin":"https://evil.example.net"` })), "clientDataJSON"},
		{"duplicate type by escaping", key, sign(with(func(c *ceremony) { c.extra = `,"\u0074ype":"webauthn.create"` })), "clientDataJSON"},
		{"clientDataJSON not an object", key, sign(with(func(c *ceremony) { c.clientData = `["webauthn.get"]` })), "not a JSON object"},
		{"clientDataJSON trailing data", key, sign(with(func(c *ceremony) {
			c.clientData = `{"type":"webauthn.get","challenge":"` + keys.Challenge(digest[:]) + `","origin":"` + testOrigin + `"}{}`
		})), "clientDataJSON"},
		{"clientDataJSON changed after signing", key, func() []byte {
			a := *valid
			a.ClientDataJSON = []byte(strings.Replace(string(a.ClientDataJSON), `"webauthn.get"`, `"webauthn.get" `, 1))
			return a.Marshal()
		}(), "does not verify"},
		{"signCount changed after signing", key, func() []byte {
			a := *valid
			a.AuthenticatorData = append([]byte{}, a.AuthenticatorData...)
			a.AuthenticatorData[36]++
			return a.Marshal()
		}(), "does not verify"},
		{"authenticatorData with extensions", key, func() []byte {
			a := *pk.assert(t, with(func(c *ceremony) { c.flags = up | uv | 0x80 }))
			a.AuthenticatorData = append(a.AuthenticatorData, 0xa0) // empty CBOR map
			return resign(&a)
		}(), "authenticatorData is 38 bytes"},
		// Re-encodings of the valid entry: same assertion, other bytes.
		{"re-encoded with padding", key, wire(base64.URLEncoding.EncodeToString(valid.AuthenticatorData), cdB64, sigB64), "base64url"},
		{"re-encoded as standard base64", key, func() []byte {
			f := [3][]byte{valid.AuthenticatorData, valid.ClientDataJSON, valid.Signature}
			out := [3]string{adB64, cdB64, sigB64}
			for i := range f {
				if std := base64.StdEncoding.EncodeToString(f[i]); std != out[i] {
					out[i] = std
					break
				}
			}
			return wire(out[0], out[1], out[2])
		}(), "base64url"},
		{"re-encoded with white space", key, []byte(strings.Replace(string(validEnc), `,"clientDataJSON"`, `, "clientDataJSON"`, 1)), "one encoding"},
		{"re-encoded with members reordered", key, []byte(`{"clientDataJSON":"` + cdB64 + `","authenticatorData":"` + adB64 + `","signature":"` + sigB64 + `"}`), "one encoding"},
		{"re-encoded with member in another case", key, []byte(strings.Replace(string(validEnc), `"signature"`, `"Signature"`, 1)), "one encoding"},
		{"re-encoded with an escaped value", key, []byte(strings.Replace(string(validEnc), `"signature":"`+sigB64[:1], `"signature":"\u00`+hex2(sigB64[0]), 1)), "one encoding"},
		{"re-encoded with trailing newline", key, append(append([]byte{}, validEnc...), '\n'), "one encoding"},
		{"re-encoded DER signature", key, wire(adB64, cdB64, enc(longDER(t, valid.Signature))), "DER"},
		{"duplicate member in the entry", key, []byte(strings.TrimSuffix(string(validEnc), "}") + `,"signature":"` + sigB64 + `"}`), "passkey assertion"},
		{"unknown member in the entry", key, []byte(strings.TrimSuffix(string(validEnc), "}") + `,"userHandle":""}`), "unknown field"},
		{"truncated entry", key, validEnc[:len(validEnc)-2], "passkey assertion"},
		{"truncated authenticatorData", key, wire(enc(valid.AuthenticatorData[:36]), cdB64, sigB64), "authenticatorData is 36 bytes"},
		{"truncated clientDataJSON", key, wire(adB64, enc(valid.ClientDataJSON[:len(valid.ClientDataJSON)-1]), sigB64), "clientDataJSON"},
		{"truncated signature", key, wire(adB64, cdB64, enc(valid.Signature[:len(valid.Signature)-1])), "DER"},
		{"empty signature", key, wire(adB64, cdB64, ""), "DER"},
		{"empty entry", key, nil, "passkey assertion"},
		{"raw ECDSA signature instead of an assertion", key, func() []byte {
			s, _ := ecdsa.SignASN1(rand.Reader, pk.priv, digest[:])
			return s
		}(), "passkey assertion"},
		{"oversized entry", key, wire(adB64, enc(make([]byte, keys.MaxAssertionBytes)), sigB64), "limit"},
		{"oversized clientDataJSON", key, wire(adB64, enc([]byte(strings.Repeat(" ", keys.MaxClientDataJSONBytes+1))), sigB64), "clientDataJSON is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.key.Verify(pae, tc.sig)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, keys.ErrBadSignature) {
				t.Errorf("error %v is not ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// longDER re-encodes a DER ECDSA signature with a non-minimal integer
// (a redundant leading zero): the same r and s, other bytes.
func longDER(t *testing.T, sig []byte) []byte {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatal(err)
	}
	r := append([]byte{0, 0}, rs.R.Bytes()...)
	s := rs.S.Bytes()
	if s[0]&0x80 != 0 {
		s = append([]byte{0}, s...)
	}
	body := append(append([]byte{0x02, byte(len(r))}, r...), append([]byte{0x02, byte(len(s))}, s...)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestPasskeyVerifiesOnlyPasskeyEntries(t *testing.T) {
	// An ECDSA key listed as ecdsa takes a raw signature over SHA-256(PAE);
	// the same key as a passkey takes only an assertion, and the other way
	// round.
	pk := newSoftPasskey(t)
	pae := testPAE(t, "req-1")
	digest := sha256.Sum256(pae)
	asPasskey := pk.key(t, "")
	asECDSA, err := keys.FromCrypto(&pk.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ecdsa.SignASN1(rand.Reader, pk.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	assertion := pk.assert(t, ceremony{flags: up | uv, challenge: digest[:]}).Marshal()
	if err := asECDSA.Verify(pae, raw); err != nil {
		t.Fatalf("ecdsa: %v", err)
	}
	if err := asPasskey.Verify(pae, raw); err == nil {
		t.Error("passkey accepted a raw ECDSA signature")
	}
	if err := asECDSA.Verify(pae, assertion); err == nil {
		t.Error("ecdsa key accepted an assertion")
	}
	if _, err := asPasskey.Sign(pk.priv, pae); !errors.Is(err, keys.ErrUnsupportedKey) {
		t.Errorf("Sign with a passkey key: %v, want ErrUnsupportedKey", err)
	}
}

func TestPasskeyIdentity(t *testing.T) {
	// One passkey counts once: whatever record lists it (other origins,
	// another UV setting, as a plain ecdsa key), its identity is the SPKI's.
	pk := newSoftPasskey(t)
	a := pk.key(t, "")
	b := pk.key(t, "", testOrigin, "https://other.approve.example.com")
	c := pk.key(t, keys.UserVerificationPreferred)
	e, err := keys.FromCrypto(&pk.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, k := range []*keys.PublicKey{a, b, c, e} {
		if k.Identity() != e.Identity() {
			t.Errorf("key %s: identity %s, want %s", k.ID(), k.Identity(), e.Identity())
		}
		ids[k.ID()] = true
	}
	if len(ids) != 4 {
		t.Errorf("%d distinct key IDs for 4 different records, want 4", len(ids))
	}
	if other := newSoftPasskey(t).key(t, ""); other.Identity() == a.Identity() {
		t.Error("two passkeys share an identity")
	}
}

func TestPasskeyTUFRoundTrip(t *testing.T) {
	pk := newSoftPasskey(t)
	k := pk.key(t, "", testOrigin, "https://b.approve.example.com")
	data, err := json.Marshal(k.TUF())
	if err != nil {
		t.Fatal(err)
	}
	back, err := keys.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	if back.ID() != k.ID() || back.Identity() != k.Identity() {
		t.Fatalf("round trip: ID %s identity %s, want %s %s", back.ID(), back.Identity(), k.ID(), k.Identity())
	}
	// The key ID is the one go-tuf computes for the record as stored.
	var rec metadata.Key
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if id, _ := rec.ID(); id != k.ID() {
		t.Errorf("go-tuf key ID %s, keys %s", id, k.ID())
	}
	p, ok := back.Passkey()
	if !ok || p.RPID != testRPID || len(p.Origins) != 2 || string(p.CredentialID) != string(pk.credID) || !p.UVRequired() {
		t.Errorf("Passkey() = %+v, %v", p, ok)
	}
	if !strings.Contains(back.Describe(), testRPID) {
		t.Errorf("Describe() = %q", back.Describe())
	}
	// Mutating the returned record or description leaves the key alone.
	p.Origins[0] = "https://evil.example.net"
	rec2 := k.TUF()
	rec2.Value.UnrecognizedFields["origins"].([]any)[0] = "https://evil.example.net"
	if q, _ := k.Passkey(); q.Origins[0] != testOrigin {
		t.Error("Passkey() shares its origins")
	}
	if again, _ := json.Marshal(k.TUF()); string(again) != string(data) {
		t.Errorf("TUF() shares its keyval: %s", again)
	}
	if _, ok := keys.Parse(k.PEM()); ok != nil {
		t.Errorf("PEM of a passkey key does not parse: %v", ok)
	}
}

func TestPasskeyKeyParsingRejects(t *testing.T) {
	pk := newSoftPasskey(t)
	good := pk.key(t, "")
	data, err := json.Marshal(good.TUF())
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := strings.TrimSpace(string(mustRSA(t)))
	edit := func(f func(m map[string]any, kv map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		f(m, m["keyval"].(map[string]any))
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	for _, tc := range []struct{ name, json string }{
		{"other scheme", edit(func(m, kv map[string]any) { m["scheme"] = keys.SchemeECDSAP256 })},
		{"unknown top-level field", edit(func(m, kv map[string]any) { m["keyid_hash_algorithms"] = []any{"sha256"} })},
		{"unknown keyval field", edit(func(m, kv map[string]any) { kv["counter"] = 1 })},
		{"duplicate keyval field", strings.Replace(string(data), `"rpId":`, `"rpId":"example.com","rpId":`, 1)},
		{"credentialId missing", edit(func(m, kv map[string]any) { delete(kv, "credentialId") })},
		{"credentialId padded", edit(func(m, kv map[string]any) {
			kv["credentialId"] = base64.URLEncoding.EncodeToString(make([]byte, 16)) + "="
		})},
		{"credentialId standard base64", edit(func(m, kv map[string]any) { kv["credentialId"] = "ab+/" })},
		{"credentialId empty", edit(func(m, kv map[string]any) { kv["credentialId"] = "" })},
		{"credentialId too long", edit(func(m, kv map[string]any) {
			kv["credentialId"] = base64.RawURLEncoding.EncodeToString(make([]byte, keys.MaxCredentialIDBytes+1))
		})},
		{"credentialId not a string", edit(func(m, kv map[string]any) { kv["credentialId"] = 7 })},
		{"rpId missing", edit(func(m, kv map[string]any) { delete(kv, "rpId") })},
		{"rpId upper case", edit(func(m, kv map[string]any) { kv["rpId"] = "Approve.example.com" })},
		{"rpId with port", edit(func(m, kv map[string]any) { kv["rpId"] = "approve.example.com:443" })},
		{"rpId an IP address", edit(func(m, kv map[string]any) { kv["rpId"] = "192.0.2.1"; kv["origins"] = []any{"https://192.0.2.1"} })},
		{"rpId trailing dot", edit(func(m, kv map[string]any) { kv["rpId"] = "approve.example.com." })},
		{"origins missing", edit(func(m, kv map[string]any) { delete(kv, "origins") })},
		{"origins empty", edit(func(m, kv map[string]any) { kv["origins"] = []any{} })},
		{"origins a string", edit(func(m, kv map[string]any) { kv["origins"] = testOrigin })},
		{"origin not a string", edit(func(m, kv map[string]any) { kv["origins"] = []any{1} })},
		{"origin listed twice", edit(func(m, kv map[string]any) { kv["origins"] = []any{testOrigin, testOrigin} })},
		{"origin outside the rpId", edit(func(m, kv map[string]any) { kv["origins"] = []any{"https://evil.example.net"} })},
		{"origin suffix but not subdomain", edit(func(m, kv map[string]any) { kv["origins"] = []any{"https://xapprove.example.com"} })},
		{"origin over http", edit(func(m, kv map[string]any) { kv["origins"] = []any{"http://approve.example.com"} })},
		{"origin with path", edit(func(m, kv map[string]any) { kv["origins"] = []any{testOrigin + "/"} })},
		{"origin with default port", edit(func(m, kv map[string]any) { kv["origins"] = []any{testOrigin + ":443"} })},
		{"origin with user info", edit(func(m, kv map[string]any) { kv["origins"] = []any{"https://u@approve.example.com"} })},
		{"origin upper case", edit(func(m, kv map[string]any) { kv["origins"] = []any{"https://APPROVE.example.com"} })},
		{"origin port with leading zero", edit(func(m, kv map[string]any) { kv["origins"] = []any{testOrigin + ":08443"} })},
		{"too many origins", edit(func(m, kv map[string]any) {
			var l []any
			for i := range keys.MaxPasskeyOrigins + 1 {
				l = append(l, "https://a"+string(rune('a'+i))+".approve.example.com")
			}
			kv["origins"] = l
		})},
		{"userVerification discouraged", edit(func(m, kv map[string]any) { kv["userVerification"] = "discouraged" })},
		{"userVerification a boolean", edit(func(m, kv map[string]any) { kv["userVerification"] = true })},
		{"public key RSA", edit(func(m, kv map[string]any) { kv["public"] = rsaPEM })},
		{"public key P-384", edit(func(m, kv map[string]any) {
			p, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			k, _ := keys.FromCrypto(&p.PublicKey)
			kv["public"] = string(k.PEM())
		})},
		{"public key with trailing data", edit(func(m, kv map[string]any) { kv["public"] = kv["public"].(string) + "junk" })},
		{"public key as certificate", edit(func(m, kv map[string]any) {
			kv["public"] = strings.ReplaceAll(kv["public"].(string), "PUBLIC KEY", "CERTIFICATE")
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := keys.Parse([]byte(tc.json))
			if err == nil {
				t.Fatalf("accepted %s as key %s", tc.json, k.ID())
			}
			if !errors.Is(err, keys.ErrUnsupportedKey) {
				t.Errorf("error %v is not ErrUnsupportedKey", err)
			}
		})
	}
}

func mustRSA(t *testing.T) []byte {
	t.Helper()
	return testkeys.Public(t, testkeys.Private(t, hsm.RSA3072)).PEM()
}

func FuzzParseAssertion(f *testing.F) {
	pk := newSoftPasskey(f)
	key := pk.key(f, "")
	pae := testPAE(f, "req-1")
	digest := sha256.Sum256(pae)
	valid := pk.assert(f, ceremony{flags: up | uv, challenge: digest[:]}).Marshal()
	f.Add(valid)
	f.Add([]byte(`{"authenticatorData":"","clientDataJSON":"","signature":""}`))
	f.Add([]byte(`{}`))
	f.Add(valid[:len(valid)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := keys.ParseAssertion(data)
		verr := key.Verify(pae, data)
		if err != nil {
			if verr == nil {
				t.Fatalf("Verify accepted what ParseAssertion refused: %v", err)
			}
			return
		}
		if got := a.Marshal(); string(got) != string(data) {
			t.Fatalf("accepted a second encoding: %q re-encodes as %q", data, got)
		}
		if len(a.AuthenticatorData) != keys.AuthenticatorDataBytes {
			t.Fatalf("authenticatorData of %d bytes accepted", len(a.AuthenticatorData))
		}
	})
}

// TestPasskeyInTUFDelegations: a passkey key stored in targets metadata (as
// the policy stores role keys) comes back under the same key ID.
func TestPasskeyInTUFDelegations(t *testing.T) {
	k := newSoftPasskey(t).key(t, "", testOrigin, "https://b.approve.example.com")
	targets := metadata.Targets(time.Now().Add(time.Hour))
	targets.Signed.Delegations = &metadata.Delegations{
		Keys:  map[string]*metadata.Key{k.ID(): k.TUF()},
		Roles: []metadata.DelegatedRole{{Name: "operator", KeyIDs: []string{k.ID()}, Threshold: 1, Terminating: true, Paths: []string{"*"}}},
	}
	data, err := targets.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	back, err := metadata.Targets().FromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	rec := back.Signed.Delegations.Keys[k.ID()]
	got, err := keys.FromTUF(rec)
	if err != nil {
		t.Fatalf("FromTUF(%+v): %v", rec, err)
	}
	if got.ID() != k.ID() || got.Identity() != k.Identity() {
		t.Fatalf("ID %s identity %s, want %s %s", got.ID(), got.Identity(), k.ID(), k.Identity())
	}
	if id, _ := rec.ID(); id != k.ID() {
		t.Errorf("go-tuf computes %s for the stored record, keys %s", id, k.ID())
	}
}
