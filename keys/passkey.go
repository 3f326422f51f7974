package keys

// Passkeys (WebAuthn credentials) as TUF keys, and the verification of a
// DSSE signature entry made by one. docs/passkeys.md is the specification;
// keep the two in step.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/strictjson"
)

// The TUF key type and scheme of a passkey: an ECDSA P-256 (COSE ES256)
// WebAuthn credential whose signatures are WebAuthn assertions.
const (
	TypeWebAuthnES256   = "webauthn-es256"
	SchemeWebAuthnES256 = "webauthn-es256"
)

// User-verification requirements of a passkey key.
const (
	UserVerificationRequired  = "required"
	UserVerificationPreferred = "preferred"
)

// Field names of a passkey's TUF keyval, besides "public".
const (
	keyvalCredentialID     = "credentialId"
	keyvalRPID             = "rpId"
	keyvalOrigins          = "origins"
	keyvalUserVerification = "userVerification"
)

// Bounds on passkey keys and assertions.
const (
	// MaxCredentialIDBytes is the longest credential ID WebAuthn allows.
	MaxCredentialIDBytes = 1023
	// MaxPasskeyOrigins bounds the origins one passkey key may list.
	MaxPasskeyOrigins = 16
	// MaxAssertionBytes bounds an encoded signature entry (after the DSSE
	// sig field's base64 is removed).
	MaxAssertionBytes = 8192
	// MaxClientDataJSONBytes bounds clientDataJSON.
	MaxClientDataJSONBytes = 4096
	// AuthenticatorDataBytes is the only accepted authenticatorData length:
	// rpIdHash (32), flags (1), signCount (4); no attested credential data
	// and no extensions.
	AuthenticatorDataBytes = 37

	maxOriginBytes = 253 + len("https://") + len(":65535")
)

// authenticatorData flag bits (WebAuthn §6.1).
const (
	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
	flagBE = 0x08 // backup eligible
	flagBS = 0x10 // backup state
	flagAT = 0x40 // attested credential data included
	flagED = 0x80 // extension data included
	// flagsKnown are the bits an assertion may carry; the others are
	// reserved and refused.
	flagsKnown = flagUP | flagUV | flagBE | flagBS
)

// Passkey is what a passkey key adds to its public key: the WebAuthn
// credential it is, the relying party it is scoped to, the origins allowed
// to ask it for assertions, and whether user verification is required.
type Passkey struct {
	// CredentialID is the WebAuthn credential ID (rawId), 1 to
	// [MaxCredentialIDBytes] bytes.
	CredentialID []byte
	// RPID is the relying-party ID (a lowercase domain).
	RPID string
	// Origins are the serialized origins ("https://host[:port]", or
	// "http://localhost[:port]") whose assertions count. Each host is RPID
	// or a subdomain of it.
	Origins []string
	// UserVerification is [UserVerificationRequired] (the default when
	// empty) or [UserVerificationPreferred].
	UserVerification string
}

// UVRequired reports whether assertions must carry the user-verified flag.
func (p *Passkey) UVRequired() bool { return p.UserVerification != UserVerificationPreferred }

// clone returns a deep copy.
func (p *Passkey) clone() Passkey {
	return Passkey{CredentialID: bytes.Clone(p.CredentialID), RPID: p.RPID, Origins: slices.Clone(p.Origins), UserVerification: p.UserVerification}
}

// Passkey returns the passkey description of a passkey key, and false for
// any other key.
func (k *PublicKey) Passkey() (Passkey, bool) {
	if k.passkey == nil {
		return Passkey{}, false
	}
	return k.passkey.clone(), true
}

// NewPasskey builds a passkey key from an ECDSA P-256 public key and its
// WebAuthn details. The TUF record always states userVerification, so the
// key ID does not depend on a default.
func NewPasskey(pub *ecdsa.PublicKey, p Passkey) (*PublicKey, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: a passkey key must be ECDSA P-256", ErrUnsupportedKey)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	uv := p.UserVerification
	if uv == "" {
		uv = UserVerificationRequired
	}
	origins := make([]any, len(p.Origins))
	for i, o := range p.Origins {
		origins[i] = o
	}
	rec := &metadata.Key{
		Type:   TypeWebAuthnES256,
		Scheme: SchemeWebAuthnES256,
		Value: metadata.KeyVal{
			PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})),
			UnrecognizedFields: map[string]any{
				keyvalCredentialID:     base64.RawURLEncoding.EncodeToString(p.CredentialID),
				keyvalRPID:             p.RPID,
				keyvalOrigins:          origins,
				keyvalUserVerification: uv,
			},
		},
	}
	return passkeyFromTUF(rec)
}

// passkeyFromTUF parses a TUF record of type [TypeWebAuthnES256] strictly:
// no field besides those documented, each of the right JSON type and in
// canonical form.
func passkeyFromTUF(rec *metadata.Key) (*PublicKey, error) {
	if rec.Scheme != SchemeWebAuthnES256 {
		return nil, fmt.Errorf("%w: key type %s with scheme %q (want %s)", ErrUnsupportedKey, TypeWebAuthnES256, rec.Scheme, SchemeWebAuthnES256)
	}
	if len(rec.UnrecognizedFields) != 0 {
		return nil, fmt.Errorf("%w: passkey key record has unknown fields %s", ErrUnsupportedKey, fieldNames(rec.UnrecognizedFields))
	}
	pub, spki, err := parsePasskeyPublic(rec.Value.PublicKey)
	if err != nil {
		return nil, err
	}
	pk, err := parsePasskeyKeyval(rec.Value.UnrecognizedFields)
	if err != nil {
		return nil, fmt.Errorf("%w: passkey keyval: %w", ErrUnsupportedKey, err)
	}
	extra := make(map[string]any, len(rec.Value.UnrecognizedFields))
	for name, v := range rec.Value.UnrecognizedFields {
		if name == keyvalOrigins {
			v = anyStrings(pk.Origins)
		}
		extra[name] = v
	}
	cp := &metadata.Key{Type: rec.Type, Scheme: rec.Scheme, Value: metadata.KeyVal{PublicKey: rec.Value.PublicKey, UnrecognizedFields: extra}}
	id, err := cp.ID()
	if err != nil {
		return nil, fmt.Errorf("computing key ID: %w", err)
	}
	return &PublicKey{id: id, identity: sha256.Sum256(spki), pub: pub, tuf: cp, hash: crypto.SHA256, spki: spki, passkey: pk}, nil
}

func anyStrings(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func fieldNames(m map[string]any) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, strconv.Quote(n))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// parsePasskeyPublic reads exactly one PKIX "PUBLIC KEY" PEM block holding
// a P-256 key, with nothing around it but white space.
func parsePasskeyPublic(s string) (*ecdsa.PublicKey, []byte, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" || len(block.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("%w: passkey keyval.public must be one PEM \"PUBLIC KEY\" block", ErrUnsupportedKey)
	}
	p, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: parsing passkey PUBLIC KEY: %v", ErrUnsupportedKey, err)
	}
	pub, ok := p.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: a passkey key must be ECDSA P-256 (ES256), got %T", ErrUnsupportedKey, p)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pub, spki, nil
}

func parsePasskeyKeyval(kv map[string]any) (*Passkey, error) {
	for name := range kv {
		switch name {
		case keyvalCredentialID, keyvalRPID, keyvalOrigins, keyvalUserVerification:
		default:
			return nil, fmt.Errorf("unknown field %q", name)
		}
	}
	str := func(name string, required bool) (string, error) {
		v, ok := kv[name]
		if !ok {
			if required {
				return "", fmt.Errorf("%s is missing", name)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s is not a string", name)
		}
		return s, nil
	}
	p := &Passkey{}
	credID, err := str(keyvalCredentialID, true)
	if err != nil {
		return nil, err
	}
	if p.CredentialID, err = decodeB64URL(credID); err != nil {
		return nil, fmt.Errorf("credentialId: %w", err)
	}
	if n := len(p.CredentialID); n == 0 || n > MaxCredentialIDBytes {
		return nil, fmt.Errorf("credentialId is %d bytes (want 1 to %d)", n, MaxCredentialIDBytes)
	}
	if p.RPID, err = str(keyvalRPID, true); err != nil {
		return nil, err
	}
	if err := checkRPID(p.RPID); err != nil {
		return nil, err
	}
	if p.UserVerification, err = str(keyvalUserVerification, false); err != nil {
		return nil, err
	}
	switch p.UserVerification {
	case "", UserVerificationRequired, UserVerificationPreferred:
	default:
		return nil, fmt.Errorf("userVerification %q (want %q or %q)", p.UserVerification, UserVerificationRequired, UserVerificationPreferred)
	}
	list, ok := kv[keyvalOrigins]
	if !ok {
		return nil, errors.New("origins is missing")
	}
	var origins []string
	switch l := list.(type) {
	case []any:
		for _, v := range l {
			s, ok := v.(string)
			if !ok {
				return nil, errors.New("origins holds a value that is not a string")
			}
			origins = append(origins, s)
		}
	case []string:
		origins = slices.Clone(l)
	default:
		return nil, errors.New("origins is not a list")
	}
	if len(origins) == 0 || len(origins) > MaxPasskeyOrigins {
		return nil, fmt.Errorf("origins lists %d origins (want 1 to %d)", len(origins), MaxPasskeyOrigins)
	}
	for i, o := range origins {
		if err := checkOrigin(o, p.RPID); err != nil {
			return nil, err
		}
		if slices.Contains(origins[:i], o) {
			return nil, fmt.Errorf("origin %q is listed twice", o)
		}
	}
	p.Origins = origins
	return p, nil
}

// decodeB64URL decodes unpadded base64url, refusing padding, white space
// and non-zero trailing bits, so that each value has one encoding.
func decodeB64URL(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("not unpadded base64url")
	}
	return b, nil
}

// checkRPID accepts a lowercase DNS name (letters, digits, hyphens; labels
// of 1 to 63 characters, not starting or ending with a hyphen), at most 253
// characters, without a trailing dot. An IP address is not a valid RP ID.
func checkRPID(id string) error {
	if id == "" || len(id) > 253 {
		return fmt.Errorf("rpId %q is not a domain name of 1 to 253 characters", id)
	}
	labels := strings.Split(id, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("rpId %q is not a lowercase domain name", id)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("rpId %q is not a lowercase domain name", id)
			}
		}
	}
	if last := labels[len(labels)-1]; last[0] >= '0' && last[0] <= '9' {
		return fmt.Errorf("rpId %q looks like an IP address, not a domain name", id)
	}
	return nil
}

// checkOrigin accepts an origin exactly as browsers serialize it into
// clientDataJSON: "https://host" or "https://host:port" (port not 443, no
// leading zeros), or the same with http for localhost and its subdomains
// (secure contexts), with a lowercase host that is rpID or a subdomain of
// it. Assertions are then matched byte for byte.
func checkOrigin(o, rpID string) error {
	bad := func(why string) error { return fmt.Errorf("origin %q: %s", o, why) }
	if len(o) > maxOriginBytes {
		return bad("too long")
	}
	u, err := url.Parse(o)
	if err != nil {
		return bad("not a URL")
	}
	if u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(o, "#") {
		return bad(`want scheme://host[:port] and nothing else`)
	}
	host, port := u.Hostname(), u.Port()
	switch u.Scheme {
	case "https":
		if port == "443" {
			return bad("the default port is not part of a serialized origin")
		}
	case "http":
		if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
			return bad("http is only a secure context for localhost; use https")
		}
		if port == "80" {
			return bad("the default port is not part of a serialized origin")
		}
	default:
		return bad("scheme must be https (or http for localhost)")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return bad("invalid port")
		}
	}
	want := u.Scheme + "://" + host
	if port != "" {
		want += ":" + port
	}
	if want != o {
		return bad("not in serialized form (lowercase scheme and host, no trailing slash)")
	}
	if checkRPID(host) != nil {
		return bad("host is not a lowercase domain name")
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return bad(fmt.Sprintf("host is neither the rpId %q nor a subdomain of it", rpID))
	}
	return nil
}

// Assertion is the DSSE signature entry of a passkey: a WebAuthn assertion.
// Encoded (see [Assertion.Marshal]) it is the byte string whose standard
// base64 is the entry's "sig".
type Assertion struct {
	AuthenticatorData []byte
	ClientDataJSON    []byte
	// Signature is the ASN.1 DER ECDSA signature over
	// AuthenticatorData ‖ SHA-256(ClientDataJSON).
	Signature []byte
}

// Marshal encodes the assertion in its one accepted form:
//
//	{"authenticatorData":"<b64url>","clientDataJSON":"<b64url>","signature":"<b64url>"}
//
// with the members in this order, no white space, and each value unpadded
// base64url (RFC 4648 §5).
func (a *Assertion) Marshal() []byte {
	enc := base64.RawURLEncoding
	var b bytes.Buffer
	b.Grow(64 + enc.EncodedLen(len(a.AuthenticatorData)) + enc.EncodedLen(len(a.ClientDataJSON)) + enc.EncodedLen(len(a.Signature)))
	b.WriteString(`{"authenticatorData":"`)
	b.WriteString(enc.EncodeToString(a.AuthenticatorData))
	b.WriteString(`","clientDataJSON":"`)
	b.WriteString(enc.EncodeToString(a.ClientDataJSON))
	b.WriteString(`","signature":"`)
	b.WriteString(enc.EncodeToString(a.Signature))
	b.WriteString(`"}`)
	return b.Bytes()
}

// ParseAssertion decodes a passkey signature entry. It accepts only the
// exact encoding [Assertion.Marshal] produces, authenticatorData of
// [AuthenticatorDataBytes], clientDataJSON of at most
// [MaxClientDataJSONBytes] and a DER signature in minimal form; anything
// else, including a re-encoding of a valid entry, is refused.
func ParseAssertion(data []byte) (*Assertion, error) {
	if len(data) > MaxAssertionBytes {
		return nil, fmt.Errorf("passkey assertion is %d bytes (limit %d)", len(data), MaxAssertionBytes)
	}
	var wire struct {
		AuthenticatorData string `json:"authenticatorData"`
		ClientDataJSON    string `json:"clientDataJSON"`
		Signature         string `json:"signature"`
	}
	if err := strictjson.Unmarshal(data, &wire); err != nil {
		return nil, fmt.Errorf("passkey assertion: %w", err)
	}
	a := &Assertion{}
	var err error
	for _, f := range []struct {
		name string
		in   string
		out  *[]byte
	}{
		{"authenticatorData", wire.AuthenticatorData, &a.AuthenticatorData},
		{"clientDataJSON", wire.ClientDataJSON, &a.ClientDataJSON},
		{"signature", wire.Signature, &a.Signature},
	} {
		if *f.out, err = decodeB64URL(f.in); err != nil {
			return nil, fmt.Errorf("passkey assertion: %s is %w", f.name, err)
		}
	}
	if !bytes.Equal(a.Marshal(), data) {
		return nil, errors.New(`passkey assertion is not in its one encoding ({"authenticatorData":…,"clientDataJSON":…,"signature":…}, unpadded base64url, no white space)`)
	}
	if len(a.AuthenticatorData) != AuthenticatorDataBytes {
		return nil, fmt.Errorf("passkey assertion: authenticatorData is %d bytes (want %d: no attested credential data, no extensions)", len(a.AuthenticatorData), AuthenticatorDataBytes)
	}
	if n := len(a.ClientDataJSON); n == 0 || n > MaxClientDataJSONBytes {
		return nil, fmt.Errorf("passkey assertion: clientDataJSON is %d bytes (want 1 to %d)", n, MaxClientDataJSONBytes)
	}
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(a.Signature, &rs)
	if err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
		return nil, errors.New("passkey assertion: signature is not a DER ECDSA signature")
	}
	if der, err := asn1.Marshal(rs); err != nil || !bytes.Equal(der, a.Signature) {
		return nil, errors.New("passkey assertion: signature is not in minimal DER")
	}
	return a, nil
}

// Challenge returns the WebAuthn challenge a passkey signs for a message
// digest: its unpadded base64url, as it appears in clientDataJSON.
// For a DSSE envelope the digest is SHA-256 of the PAE.
func Challenge(digest []byte) string { return base64.RawURLEncoding.EncodeToString(digest) }

// verifyPasskey checks a passkey signature entry against the SHA-256 digest
// of the signed message (the DSSE PAE): every rule of docs/passkeys.md.
func (k *PublicKey) verifyPasskey(digest, sig []byte) error {
	fail := func(err error) error {
		return fmt.Errorf("%w (key %s): passkey assertion: %w", ErrBadSignature, short(k.id), err)
	}
	if len(digest) != sha256.Size {
		return fail(fmt.Errorf("message digest is %d bytes, want SHA-256", len(digest)))
	}
	a, err := ParseAssertion(sig)
	if err != nil {
		return fmt.Errorf("%w (key %s): %w", ErrBadSignature, short(k.id), err)
	}
	p := k.passkey
	if err := checkClientData(a.ClientDataJSON, Challenge(digest), p.Origins); err != nil {
		return fail(err)
	}
	ad := a.AuthenticatorData
	rpHash := sha256.Sum256([]byte(p.RPID))
	if subtle.ConstantTimeCompare(ad[:32], rpHash[:]) != 1 {
		return fail(fmt.Errorf("authenticatorData rpIdHash is not SHA-256 of rpId %q", p.RPID))
	}
	flags := ad[32]
	switch {
	case flags&^flagsKnown != 0:
		return fail(fmt.Errorf("authenticatorData flags %#02x set reserved, attested-credential or extension bits", flags))
	case flags&flagUP == 0:
		return fail(errors.New("user presence (UP) flag is not set"))
	case p.UVRequired() && flags&flagUV == 0:
		return fail(errors.New("user verification (UV) flag is not set and this key requires it"))
	case flags&flagBS != 0 && flags&flagBE == 0:
		return fail(errors.New("backup state (BS) set without backup eligibility (BE)"))
	}
	cdHash := sha256.Sum256(a.ClientDataJSON)
	h := sha256.New()
	h.Write(ad)
	h.Write(cdHash[:])
	if !ecdsa.VerifyASN1(k.pub.(*ecdsa.PublicKey), h.Sum(nil), a.Signature) {
		return fail(errors.New("ES256 signature over authenticatorData ‖ SHA-256(clientDataJSON) does not verify"))
	}
	return nil
}

// clientData members quorate reads; other members are allowed (browsers
// add some) but may not be a case variant of these.
var clientDataMembers = []string{"type", "challenge", "origin", "crossOrigin", "topOrigin", "tokenBinding"}

// checkClientData parses clientDataJSON strictly and checks it is a
// webauthn.get for challenge from one of origins, not cross-origin.
func checkClientData(cd []byte, challenge string, origins []string) error {
	if err := strictjson.CheckDuplicates(cd); err != nil {
		return fmt.Errorf("clientDataJSON: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(cd, &m); err != nil {
		return fmt.Errorf("clientDataJSON is not a JSON object: %w", err)
	}
	for name := range m {
		for _, known := range clientDataMembers {
			if name != known && strings.EqualFold(name, known) {
				return fmt.Errorf("clientDataJSON member %q is a case variant of %q", name, known)
			}
		}
	}
	str := func(name string) (string, error) {
		raw, ok := m[name]
		if !ok {
			return "", fmt.Errorf("clientDataJSON has no %s", name)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("clientDataJSON %s is not a string", name)
		}
		return s, nil
	}
	typ, err := str("type")
	if err != nil {
		return err
	}
	if typ != "webauthn.get" {
		return fmt.Errorf("clientDataJSON type is %s, want webauthn.get", clip(typ))
	}
	got, err := str("challenge")
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return errors.New("clientDataJSON challenge is not SHA-256 of this message (the envelope's PAE)")
	}
	origin, err := str("origin")
	if err != nil {
		return err
	}
	if !slices.Contains(origins, origin) {
		return fmt.Errorf("clientDataJSON origin %s is not one this key allows", clip(origin))
	}
	if raw, ok := m["crossOrigin"]; ok {
		var cross bool
		if err := json.Unmarshal(raw, &cross); err != nil {
			return errors.New("clientDataJSON crossOrigin is not a boolean")
		}
		if cross {
			return errors.New("clientDataJSON crossOrigin is true (asked from a frame of another origin)")
		}
	}
	if _, ok := m["topOrigin"]; ok {
		return errors.New("clientDataJSON has topOrigin (only cross-origin assertions do)")
	}
	if raw, ok := m["tokenBinding"]; ok {
		var tb struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &tb); err != nil || tb.Status == "present" {
			return errors.New("clientDataJSON tokenBinding is malformed or present (token binding cannot be checked offline)")
		}
	}
	return nil
}

// clip quotes s for an error message, cut to a readable length.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}
