// Package sigbundle splits quorate's composite attestation into one Sigstore
// bundle per signer, and assembles a composite back from such bundles.
//
// Sigstore bundles carry exactly one DSSE signature (sigstore/protobuf-specs
// #318, sigstore-go #225: sigstore-go refuses an envelope with more), so
// cosign, sigstore-go and `gh attestation verify` cannot read quorate's
// composite envelope, which holds every party's signature. [Split] gives each
// signature its own bundle over the very same statement; a Sigstore verifier
// given that signer's public key checks it as it checks any key-signed
// bundle. [Assemble] goes the other way, so quorate's threshold verification
// can run over a directory of such bundles.
//
// # What goes where
//
// A bundle ([MediaType], Sigstore bundle v0.3) holds:
//
//   - mediaType: application/vnd.dev.sigstore.bundle.v0.3+json;
//
//   - dsseEnvelope: the composite's payload and payloadType, byte for byte,
//     with one signature entry: the composite's sig bytes, and no keyid;
//
//   - verificationMaterial.publicKey.hint: the signer's TUF key ID, the keyid
//     the signature carries in the composite, which is the ID quorate's
//     policy lists the key under: a verifier finds the key in the policy (or
//     in any key ring indexed by TUF key ID) by the hint. The hint is
//     unauthenticated: it only says which key to try. (The specification
//     recommends, without requiring, an RFC 6962 key ID, which is quorate's
//     key identity; a verifier that indexes keys that way maps TUF key ID to
//     identity through the policy.)
//
//   - no tlogEntries and no timestampVerificationData. quorate's signatures
//     are not in Rekor, and quorate's own transparency log is not Rekor: its
//     entries are not Rekor entry kinds and its checkpoints are signed by the
//     policy's log key, which no Sigstore trusted root lists. Put there, a
//     Sigstore verifier would read them as Rekor entries and fail (or, worse,
//     be configured into trusting a key it should not). RFC 3161 timestamps
//     are the only timestamp kind the field holds; quorate's log time is not
//     one. So the bundle says nothing about time, and a Sigstore verifier
//     must be told not to require an observer timestamp (sigstore-go:
//     verify.WithNoObserverTimestamps, which it allows for key-signed
//     bundles only).
//
// Why no keyid in the DSSE signature: sigstore-go checks a DSSE envelope
// through go-securesystemslib's verifier, which, for a key loaded without an
// ID (as sigstore-go loads the key the hint names), computes its own key ID
// (the SSH SHA256 fingerprint) and skips every signature whose keyid is set
// and differs. With the TUF key ID there, sigstore-go v1.3.0 rejects the
// bundle ("accepted signatures do not match threshold, Found: 0"), as
// measured by this package's tests. sigstore-go's own signer leaves the keyid
// empty too, and the bundle specification's rule that the hint and the DSSE
// keyid be equal then has no keyid to disagree with. [Assemble] puts the
// hint back as the keyid, so the composite's signature entry returns
// unchanged.
//
// quorate's log proof stays where it is: the log bundle beside the composite
// (app.intoto.json.bundle, package ledger), which proves when each counted
// signature and the composite were logged. Its signature entries name the
// request, the payload digest, the key ID and the signature bytes, so they
// apply unchanged to an envelope assembled from these bundles. Its
// attestation.emitted entry names the digest of the composite's exact bytes,
// which an assembled envelope does not reproduce (its JSON encoding and
// signature order may differ): a `--require-log` check over bundles must rest
// on the signature entries, not on that one (open for the CLI wiring after
// the issue 12 refactor).
//
// # Assembling
//
// [Assemble] takes the bundles of one release (for instance every
// *.sigstore.json of a directory, [ReadDir]) and returns one DSSE envelope:
// every bundle must carry the same payload and payloadType, byte for byte,
// or it fails with [ErrPayloadMismatch]. With a [KeyLookup] (the policy's
// keys by TUF key ID), each signature is checked against its key and one that
// does not verify fails the whole assembly with [keys.ErrBadSignature]: a
// directory holding a changed bundle is not what the signers produced, so it
// is refused rather than quietly thinned. Signatures by one key (the same
// key identity, whatever key ID it is listed under) collapse to one: the
// first in the order given ([ReadDir] gives file name order). A signature
// whose key ID the lookup does not know is kept as it is (collapsed only
// with the same key ID), and listed in [Assembly.Unknown]: quorate's
// verifier then reports it as not counted, exactly as it would in the
// composite. The assembled envelope is then verified like any composite;
// nothing here decides whether a threshold is met.
//
// # One file: the composite and its log bundle
//
// [MarshalInline] and [ParseInline] are the other shape: the composite
// envelope, every signature, and its log bundle in one JSON object of
// [InlineMediaType] ({"mediaType", "dsseEnvelope", "logBundle"}, as 'quorate
// request attestation --bundle-inline' writes it), for users who want one
// file. The envelope's exact bytes, which the ledger names, are restored by
// encoding it ([attest.Encode]); see docs/cli.md.
//
// Passkey (webauthn-es256) signatures split into bundles like any other,
// but only quorate's verifier can check them; Sigstore verifiers cannot.
//
// This package is outside package policy on purpose: it depends on the
// Sigstore protobuf specification, which a deploy gate embedding policy
// should not need.
package sigbundle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/quorate-dev/quorate/attest"
)

// MediaType is the media type of the bundles this package writes.
const MediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// mediaTypeV03Compat is the older spelling of the v0.3 media type, which
// readers must accept.
const mediaTypeV03Compat = "application/vnd.dev.sigstore.bundle+json;version=0.3"

// Extension is the file name extension of a bundle, as Sigstore tools use it.
const Extension = ".sigstore.json"

// Errors callers may test for.
var (
	// ErrNotBundle marks input that is not a key-signed Sigstore v0.3 DSSE
	// bundle of the shape this package reads.
	ErrNotBundle = errors.New("not a single-signature Sigstore v0.3 DSSE bundle")
	// ErrPayloadMismatch marks bundles that do not all carry the same payload.
	ErrPayloadMismatch = errors.New("bundles carry different payloads")
)

// Bundle is one signer's bundle: the composite's payload with one signature.
type Bundle struct {
	PayloadType string
	Payload     []byte // the statement, decoded
	KeyID       string // TUF key ID: the key hint, and the signature's keyid in a composite
	Sig         []byte
}

// keyIDPattern is a TUF key ID as quorate writes them: the hex SHA-256 of
// the key record. It is also a safe file name.
var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Split returns one bundle per signature of env, in the envelope's order.
// Every signature must carry a TUF key ID (quorate's always do) and no key
// ID may appear twice.
func Split(env *attest.Envelope) ([]*Bundle, error) {
	if env == nil {
		return nil, fmt.Errorf("%w: no envelope", attest.ErrMalformed)
	}
	if env.PayloadType != attest.PayloadType {
		return nil, fmt.Errorf("%w: payloadType %q is not %s", attest.ErrMalformed, env.PayloadType, attest.PayloadType)
	}
	payload, err := attest.DecodeBase64(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", attest.ErrMalformed, err)
	}
	if len(env.Signatures) == 0 {
		return nil, fmt.Errorf("%w: the envelope has no signature", attest.ErrMalformed)
	}
	seen := map[string]int{}
	out := make([]*Bundle, 0, len(env.Signatures))
	for i, s := range env.Signatures {
		if !keyIDPattern.MatchString(s.KeyID) {
			return nil, fmt.Errorf("%w: signature %d: keyid %q is not a TUF key ID (64 lower-case hex digits); a bundle needs it as its key hint", attest.ErrMalformed, i, clip(s.KeyID))
		}
		if j, dup := seen[s.KeyID]; dup {
			return nil, fmt.Errorf("%w: signatures %d and %d both carry key ID %s", attest.ErrMalformed, j, i, s.KeyID)
		}
		seen[s.KeyID] = i
		sig, err := attest.DecodeBase64(s.Sig)
		if err != nil || len(sig) == 0 {
			return nil, fmt.Errorf("%w: signature %d (key %s): sig is empty or not base64", attest.ErrMalformed, i, s.KeyID)
		}
		out = append(out, &Bundle{PayloadType: env.PayloadType, Payload: payload, KeyID: s.KeyID, Sig: sig})
	}
	return out, nil
}

// FileName is the bundle's file name in a directory: its key ID and
// [Extension].
func (b *Bundle) FileName() string { return b.KeyID + Extension }

// Signature returns the bundle's signature as a composite's entry.
func (b *Bundle) Signature() attest.Signature {
	return attest.Signature{KeyID: b.KeyID, Sig: base64.StdEncoding.EncodeToString(b.Sig)}
}

func (b *Bundle) proto() *protobundle.Bundle {
	return &protobundle.Bundle{
		MediaType: MediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{
				PublicKey: &protocommon.PublicKeyIdentifier{Hint: b.KeyID},
			},
		},
		Content: &protobundle.Bundle_DsseEnvelope{
			DsseEnvelope: &protodsse.Envelope{
				Payload:     b.Payload,
				PayloadType: b.PayloadType,
				Signatures:  []*protodsse.Signature{{Sig: b.Sig}}, // no keyid: see the package documentation
			},
		},
	}
}

// Marshal encodes the bundle as Sigstore bundle JSON (protobuf JSON
// mapping), indented and stable: the same bundle gives the same bytes.
func (b *Bundle) Marshal() ([]byte, error) {
	raw, err := protojson.Marshal(b.proto())
	if err != nil {
		return nil, fmt.Errorf("encoding bundle for key %s: %w", b.KeyID, err)
	}
	// protojson's spacing is deliberately unstable; re-indent it.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("encoding bundle for key %s: %w", b.KeyID, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Parse reads one bundle. It accepts a Sigstore v0.3 bundle (either
// spelling of its media type) whose content is a DSSE envelope of
// [attest.PayloadType] with exactly one signature, whose verification
// material is a public key hint holding a TUF key ID (and equal to the
// signature's keyid, if the signature has one), within
// l.MaxBytes. Unknown or duplicate fields are refused. Transparency log
// entries and RFC 3161 timestamps, if a Sigstore tool added some, are
// ignored: quorate neither counts nor trusts them (its own log proves time).
func Parse(data []byte, l attest.Limits) (*Bundle, error) {
	l = l.OrDefault()
	if int64(len(data)) > l.MaxBytes {
		return nil, fmt.Errorf("%w: bundle of %d bytes (limit %d)", attest.ErrTooLarge, len(data), l.MaxBytes)
	}
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(data, &pb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	if pb.MediaType != MediaType && pb.MediaType != mediaTypeV03Compat {
		return nil, fmt.Errorf("%w: mediaType %q (want %s)", ErrNotBundle, clip(pb.MediaType), MediaType)
	}
	hint := pb.GetVerificationMaterial().GetPublicKey()
	if hint == nil {
		return nil, fmt.Errorf("%w: verification material is not a public key hint (certificates are not read yet)", ErrNotBundle)
	}
	env := pb.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: content is not a DSSE envelope", ErrNotBundle)
	}
	if env.PayloadType != attest.PayloadType {
		return nil, fmt.Errorf("%w: payloadType %q is not %s", ErrNotBundle, clip(env.PayloadType), attest.PayloadType)
	}
	if len(env.Signatures) != 1 {
		return nil, fmt.Errorf("%w: the envelope has %d signatures, want 1", ErrNotBundle, len(env.Signatures))
	}
	s := env.Signatures[0]
	if !keyIDPattern.MatchString(hint.Hint) {
		return nil, fmt.Errorf("%w: key hint %q is not a TUF key ID", ErrNotBundle, clip(hint.Hint))
	}
	if s.Keyid != "" && s.Keyid != hint.Hint {
		return nil, fmt.Errorf("%w: the signature's keyid %q differs from the key hint %s", ErrNotBundle, clip(s.Keyid), hint.Hint)
	}
	if len(s.Sig) == 0 || len(env.Payload) == 0 {
		return nil, fmt.Errorf("%w: empty signature or payload", ErrNotBundle)
	}
	return &Bundle{PayloadType: env.PayloadType, Payload: env.Payload, KeyID: hint.Hint, Sig: s.Sig}, nil
}

// WriteDir writes each bundle to dir (created if missing) as
// [Bundle.FileName], replacing a file of that name, and returns the paths
// written.
func WriteDir(dir string, bundles []*Bundle) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating bundle directory: %w", err)
	}
	var paths []string
	for _, b := range bundles {
		data, err := b.Marshal()
		if err != nil {
			return paths, err
		}
		p := filepath.Join(dir, b.FileName())
		if err := writeAtomic(p, data); err != nil {
			return paths, fmt.Errorf("writing bundle %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// clip shortens untrusted text for an error message (callers quote it
// with %q, which escapes what is not printable).
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
