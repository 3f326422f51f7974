package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signed-note signature type of Ed25519
// cosignature/v1 keys (c2sp.org/tlog-cosignature).
const algCosignatureV1 = 0x04

// cosignatureSize is the decoded size of a cosignature/v1 signature: the
// 8-byte timestamp and the Ed25519 signature (the 4-byte key ID before them
// belongs to the note signature line).
const cosignatureSize = 8 + ed25519.SignatureSize

// Verifier is a witness's identity: its name (a schema-less URL such as
// witness.example/w1) and Ed25519 cosigner key. It is a [note.Verifier] of
// cosignature/v1 signatures, so [note.Open] can check cosigned checkpoints
// with it. It is immutable and safe for concurrent use.
type Verifier struct {
	name string
	key  ed25519.PublicKey
	hash uint32
}

var _ note.Verifier = (*Verifier)(nil)

// NewVerifier returns the verifier of the witness name with Ed25519 key.
func NewVerifier(name string, key ed25519.PublicKey) (*Verifier, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: name %q is empty or has spaces or '+'", ErrBadVerifierKey, name)
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s: Ed25519 key of %d bytes, want %d", ErrBadVerifierKey, name, len(key), ed25519.PublicKeySize)
	}
	k := bytes.Clone(key)
	return &Verifier{name: name, key: k, hash: KeyID(name, k)}, nil
}

// KeyID is the key ID of an Ed25519 cosignature/v1 key:
//
//	SHA-256(name || "\n" || 0x04 || 32-byte key)[:4]
//
// read as a big-endian number, as c2sp.org/tlog-cosignature specifies.
func KeyID(name string, key ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// ParseVerifierKey parses a witness vkey (c2sp.org/signed-note verifier key)
//
//	<name>+<8 hex digits of the key ID>+<base64(0x04 || 32-byte Ed25519 key)>
//
// and checks that it is a cosignature/v1 key whose key ID matches.
func ParseVerifierKey(vkey string) (*Verifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hexHash, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: %q is not name+keyid+key", ErrBadVerifierKey, truncate(vkey))
	}
	if len(hexHash) != 8 || strings.Trim(hexHash, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: %s: key ID %q is not 8 lowercase hex digits", ErrBadVerifierKey, truncate(name), truncate(hexHash))
	}
	h, err := strconv.ParseUint(hexHash, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: key ID %q: %w", ErrBadVerifierKey, truncate(name), hexHash, err)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: key is not base64: %w", ErrBadVerifierKey, truncate(name), err)
	}
	if len(raw) == 0 || raw[0] != algCosignatureV1 {
		alg := -1
		if len(raw) > 0 {
			alg = int(raw[0])
		}
		return nil, fmt.Errorf("%w: %s: signature type %#02x, want 0x04 (Ed25519 cosignature/v1; 0x01 is a log key, not a witness key)", ErrBadVerifierKey, truncate(name), alg)
	}
	v, err := NewVerifier(name, raw[1:])
	if err != nil {
		return nil, err
	}
	if uint32(h) != v.hash {
		return nil, fmt.Errorf("%w: %s: key ID %08x does not match the key (want %08x)", ErrBadVerifierKey, name, h, v.hash)
	}
	return v, nil
}

// Name returns the witness name.
func (v *Verifier) Name() string { return v.name }

// KeyHash returns the key ID.
func (v *Verifier) KeyHash() uint32 { return v.hash }

// Key returns a copy of the Ed25519 key.
func (v *Verifier) Key() ed25519.PublicKey { return bytes.Clone(v.key) }

// String returns the vkey.
func (v *Verifier) String() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.hash, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, v.key...)))
}

// Verify implements [note.Verifier]: sig (without the key ID) is a
// timestamp and an Ed25519 signature over the cosignature/v1 message for the
// checkpoint text msg.
func (v *Verifier) Verify(msg, sig []byte) bool {
	ts, edSig, ok := splitCosignature(sig)
	if !ok {
		return false
	}
	return ed25519.Verify(v.key, CosignedMessage(ts, msg), edSig)
}

// splitCosignature splits a cosignature/v1 signature (key ID removed) into
// its timestamp and Ed25519 signature, refusing timestamps above 2^63-1.
func splitCosignature(sig []byte) (int64, []byte, bool) {
	if len(sig) != cosignatureSize {
		return 0, nil, false
	}
	ts := binary.BigEndian.Uint64(sig)
	if ts > math.MaxInt64 {
		return 0, nil, false
	}
	return int64(ts), sig[8:], true
}

// CosignedMessage is the message an Ed25519 cosignature/v1 signs for the
// checkpoint text (the note body, ending in a newline, without signature
// lines) at POSIX time ts:
//
//	cosignature/v1
//	time <ts>
//	<text>
func CosignedMessage(ts int64, text []byte) []byte {
	return fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, text)
}

// Cosignature is one verified cosignature on a checkpoint.
type Cosignature struct {
	// Witness is the witness name, KeyID its key ID.
	Witness string
	KeyID   uint32
	// Time is the cosignature's timestamp: the witness signed at some
	// instant within the second starting at Time (the timestamp is whole
	// POSIX seconds, the signing time truncated).
	Time time.Time
	// Line is the note signature line, with its final newline:
	// "— <name> <base64(key ID || timestamp || signature)>\n".
	Line string
}

// sigPrefix starts a note signature line: an em dash and a space.
const sigPrefix = "\u2014 "

// parseSigLines splits signature lines (each "— name base64\n") into name,
// key ID and signature bytes after the key ID.
type sigLine struct {
	name string
	hash uint32
	sig  []byte
	line string
}

func parseSigLines(block []byte) ([]sigLine, error) {
	if len(block) == 0 || block[len(block)-1] != '\n' {
		return nil, fmt.Errorf("signature lines do not end with a newline")
	}
	var out []sigLine
	for _, l := range strings.SplitAfter(string(block[:len(block)-1]), "\n") {
		l = strings.TrimSuffix(l, "\n")
		rest, ok := strings.CutPrefix(l, sigPrefix)
		if !ok {
			return nil, fmt.Errorf("line %q does not start with %q", truncate(l), sigPrefix)
		}
		name, b64, _ := strings.Cut(rest, " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || !validName(name) || len(raw) < 5 {
			return nil, fmt.Errorf("line %q is not a note signature", truncate(l))
		}
		out = append(out, sigLine{name: name, hash: binary.BigEndian.Uint32(raw), sig: raw[4:], line: l + "\n"})
		if len(out) > maxSignatures {
			return nil, fmt.Errorf("more than %d signature lines", maxSignatures)
		}
	}
	return out, nil
}

// maxSignatures bounds the signature lines read from a note or an answer,
// as golang.org/x/mod/sumdb/note does.
const maxSignatures = 100

// verifyCosignatures checks the signature lines by v on text: it returns the
// first valid cosignature by v, nil if there is none, and an error if a line
// with v's name and key ID does not verify (fail closed: a forged
// cosignature is never skipped over silently).
func verifyCosignatures(v *Verifier, text []byte, lines []sigLine) (*Cosignature, error) {
	var found *Cosignature
	for _, l := range lines {
		if l.name != v.name || l.hash != v.hash {
			continue
		}
		ts, edSig, ok := splitCosignature(l.sig)
		if !ok || !ed25519.Verify(v.key, CosignedMessage(ts, text), edSig) {
			return nil, fmt.Errorf("%w: %s+%08x: cosignature does not verify on this checkpoint", ErrBadCosignature, v.name, v.hash)
		}
		if found == nil {
			found = &Cosignature{Witness: v.name, KeyID: v.hash, Time: time.Unix(ts, 0).UTC(), Line: l.line}
		}
	}
	return found, nil
}

// splitNote splits a signed note into its text (ending in a newline) and its
// signature lines, as golang.org/x/mod/sumdb/note does: the text ends at the
// last blank line.
func splitNote(signed []byte) (text, sigs []byte, err error) {
	if len(signed) > maxNoteSize {
		return nil, nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformedCheckpoint, len(signed), maxNoteSize)
	}
	if !utf8.Valid(signed) {
		return nil, nil, fmt.Errorf("%w: not UTF-8", ErrMalformedCheckpoint)
	}
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: no blank line before the signatures", ErrMalformedCheckpoint)
	}
	return signed[:i+1], signed[i+2:], nil
}

// maxNoteSize bounds a signed checkpoint with its cosignatures.
const maxNoteSize = 64 << 10

// checkpointHeader is what the witness protocol needs of a C2SP checkpoint:
// origin and size.
type checkpointHeader struct {
	origin string
	size   int64
}

// parseHeader reads the origin and tree size lines of checkpoint text.
func parseHeader(text []byte) (checkpointHeader, error) {
	lines := strings.SplitN(string(text), "\n", 4)
	if len(lines) < 4 {
		return checkpointHeader{}, fmt.Errorf("%w: fewer than three lines", ErrMalformedCheckpoint)
	}
	if !validName(lines[0]) {
		return checkpointHeader{}, fmt.Errorf("%w: origin %q", ErrMalformedCheckpoint, truncate(lines[0]))
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return checkpointHeader{}, fmt.Errorf("%w: tree size %q", ErrMalformedCheckpoint, truncate(lines[1]))
	}
	if h, err := base64.StdEncoding.DecodeString(lines[2]); err != nil || len(h) != sha256.Size {
		return checkpointHeader{}, fmt.Errorf("%w: root hash %q", ErrMalformedCheckpoint, truncate(lines[2]))
	}
	return checkpointHeader{origin: lines[0], size: n}, nil
}

// validName is the signed-note rule for key names: non-empty UTF-8
// without Unicode spaces or '+'.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsSpace) && !strings.Contains(name, "+")
}

func truncate(s string) string {
	const n = 80
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
