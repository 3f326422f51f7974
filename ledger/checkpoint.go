package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/keys"
)

// TimeExtension starts the checkpoint extension line that carries the
// logged time of the checkpoint's last entry.
const TimeExtension = "quorate-time "

// MaxCheckpointSize bounds a signed checkpoint note.
const MaxCheckpointSize = 16 << 10

// Checkpoint is a log's tree head: its origin, size and root hash (C2SP
// tlog-checkpoint), and the logged time of its last entry.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Time is the logged time of entry Size-1 (the Unix epoch for an empty
	// log). Checkpoints of the same log and size have the same text.
	Time time.Time
}

// SignedCheckpoint is a checkpoint with the signed note that carries it.
type SignedCheckpoint struct {
	Checkpoint
	// Note is the signed note: the checkpoint text, a blank line, and the
	// log's signature line.
	Note []byte
}

// Text returns the checkpoint's note text:
//
//	<origin>
//	<size>
//	<base64 root hash>
//	quorate-time <time as in TimeLayout>
func (c *Checkpoint) Text() ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	return fmt.Appendf(nil, "%s\n%d\n%s\n%s%s\n", c.Origin, c.Size,
		base64.StdEncoding.EncodeToString(c.Root[:]), TimeExtension, c.Time.Format(TimeLayout)), nil
}

func (c *Checkpoint) validate() error {
	if !validNoteName(c.Origin) {
		return fmt.Errorf("origin %q is empty or has spaces or '+'", c.Origin)
	}
	if err := printable(c.Origin); err != nil {
		return fmt.Errorf("origin %q: %w", c.Origin, err)
	}
	if c.Size < 0 {
		return fmt.Errorf("tree size %d is negative", c.Size)
	}
	if err := checkTime(c.Time); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	return nil
}

// ParseCheckpoint parses checkpoint text (the note text, without
// signatures). It accepts exactly what [Checkpoint.Text] produces: four
// lines, each ending in a newline, a decimal size without leading zeros, a
// canonical base64 root of 32 bytes, and the time extension line; any other
// extension line is rejected. Errors wrap [ErrMalformedCheckpoint] and name
// the line.
func ParseCheckpoint(text []byte) (*Checkpoint, error) {
	c, err := parseCheckpoint(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	return c, nil
}

func parseCheckpoint(text []byte) (*Checkpoint, error) {
	if len(text) > MaxCheckpointSize {
		return nil, fmt.Errorf("%d bytes (at most %d)", len(text), MaxCheckpointSize)
	}
	body, ok := bytes.CutSuffix(text, []byte("\n"))
	if !ok {
		return nil, errors.New("text does not end with a newline")
	}
	lines := strings.Split(string(body), "\n")
	if len(lines) < 4 {
		return nil, fmt.Errorf("%d lines, want origin, size, root hash and time", len(lines))
	}
	if len(lines) > 4 {
		return nil, fmt.Errorf("line 5: unexpected extension line %q", truncate(lines[4]))
	}
	c := &Checkpoint{Origin: lines[0]}
	if !validNoteName(c.Origin) {
		return nil, fmt.Errorf("line 1: origin %q is empty or has spaces or '+'", truncate(c.Origin))
	}
	if err := printable(c.Origin); err != nil {
		return nil, fmt.Errorf("line 1: origin: %w", err)
	}
	sz := lines[1]
	if sz == "" || len(sz) > 19 || strings.Trim(sz, "0123456789") != "" || (len(sz) > 1 && sz[0] == '0') {
		return nil, fmt.Errorf("line 2: tree size %q is not a decimal number without leading zeros", truncate(sz))
	}
	n, err := strconv.ParseInt(sz, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("line 2: tree size %q: %w", sz, err)
	}
	c.Size = n
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return nil, fmt.Errorf("line 3: root hash %q is not the base64 of %d bytes", truncate(lines[2]), tlog.HashSize)
	}
	copy(c.Root[:], root)
	ts, ok := strings.CutPrefix(lines[3], TimeExtension)
	if !ok {
		return nil, fmt.Errorf("line 4: %q is not a %q extension line", truncate(lines[3]), strings.TrimSpace(TimeExtension))
	}
	t, err := time.Parse(TimeLayout, ts)
	if err != nil || t.Format(TimeLayout) != ts {
		return nil, fmt.Errorf("line 4: time %q is not of the form %s", truncate(ts), TimeLayout)
	}
	c.Time = t.UTC()
	if err := checkTime(c.Time); err != nil {
		return nil, fmt.Errorf("line 4: time: %w", err)
	}
	return c, nil
}

func truncate(s string) string {
	const n = 80
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// OpenCheckpoint verifies a signed checkpoint note against the log's public
// key, which must come from trust material (never from the log), and parses
// it. The checkpoint's origin and the signature's key name must both be
// origin. Signatures by other keys (witnesses, a rotated key) are ignored;
// a note with no valid signature by logKey, or with an invalid one, is
// rejected with [ErrCheckpointSignature].
func OpenCheckpoint(signed []byte, origin string, logKey *keys.PublicKey) (*SignedCheckpoint, error) {
	if len(signed) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: signed checkpoint is %d bytes (at most %d)", ErrMalformedCheckpoint, len(signed), MaxCheckpointSize)
	}
	v, err := NewNoteVerifier(origin, logKey)
	if err != nil {
		return nil, err
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var names []string
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return nil, fmt.Errorf("%w: no signature by log key %s (%s+%08x); signatures present: %s",
				ErrCheckpointSignature, keys.Short(logKey.ID()), v.Name(), v.KeyHash(), strings.Join(names, ", "))
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("%w: %s+%08x: invalid signature by log key %s", ErrCheckpointSignature, invalid.Name, invalid.Hash, keys.Short(logKey.ID()))
		default:
			return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
		}
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, err
	}
	if c.Origin != origin {
		return nil, fmt.Errorf("%w: checkpoint is for %q, want %q", ErrWrongOrigin, truncate(c.Origin), origin)
	}
	return &SignedCheckpoint{Checkpoint: *c, Note: bytes.Clone(signed)}, nil
}
