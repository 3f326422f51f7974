package ledger

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/quorate-dev/quorate/keys"
)

// Config configures a [Log].
type Config struct {
	// Origin names the log: the first line of its checkpoints and the key
	// name of its signatures, e.g. "quorate.example/log". Required.
	Origin string
	// Signer holds the log key (Ed25519 or ECDSA P-256). Required to sign
	// checkpoints; a Log without one can append but not sign.
	Signer keys.Signer
	// Clock gives the coordinator's time; nil means time.Now.
	Clock func() time.Time
}

// Log appends entries and signs checkpoints. It holds no state of its own:
// every method works on the [Storage] it is given, so one Log serves any
// number of transactions. It is safe for concurrent use, but appends to one
// log must be serialized by the storage (its transaction): a racing append
// fails with [ErrConflict].
type Log struct {
	origin string
	signer keys.Signer
	clock  func() time.Time
}

// New checks cfg and returns a Log.
func New(cfg Config) (*Log, error) {
	if !validNoteName(cfg.Origin) {
		return nil, fmt.Errorf("ledger: origin %q is empty or has spaces or '+'", cfg.Origin)
	}
	if err := printable(cfg.Origin); err != nil {
		return nil, fmt.Errorf("ledger: origin %q: %w", cfg.Origin, err)
	}
	if cfg.Signer != nil {
		if _, err := newNoteKey(cfg.Origin, cfg.Signer.Public()); err != nil {
			return nil, err
		}
	}
	l := &Log{origin: cfg.Origin, signer: cfg.Signer, clock: cfg.Clock}
	if l.clock == nil {
		l.clock = time.Now
	}
	return l, nil
}

// Origin returns the log's origin.
func (l *Log) Origin() string { return l.origin }

// PublicKey returns the log key's public half, or nil for a Log without a
// signer.
func (l *Log) PublicKey() *keys.PublicKey {
	if l.signer == nil {
		return nil
	}
	return l.signer.Public()
}

// Append validates events and appends them, in order, as one batch. Each
// gets the next index and the time of the Log's clock, truncated to the
// millisecond and never earlier than the time of the entry before it (a
// clock that steps back does not make logged time go backwards). It returns
// the entries as logged. Either all events are appended or none: every
// event is validated and encoded before anything is written.
func (l *Log) Append(ctx context.Context, s Storage, events ...Event) ([]*Entry, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: no events", ErrInvalidAppend)
	}
	size, err := s.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading log size: %w", err)
	}
	last, err := lastTime(ctx, s, size)
	if err != nil {
		return nil, err
	}
	now := l.clock().UTC().Truncate(time.Millisecond)
	if now.Before(last) {
		now = last
	}
	out := make([]*Entry, len(events))
	raw := make([][]byte, len(events))
	for i, ev := range events {
		e := &Entry{Index: size + int64(i), Time: now, Event: ev}
		if raw[i], err = e.Marshal(); err != nil {
			return nil, fmt.Errorf("ledger: event %d of %d: %w", i+1, len(events), err)
		}
		out[i] = e
	}
	if err := appendRaw(ctx, s, size, raw); err != nil {
		return nil, err
	}
	return out, nil
}

// lastTime returns the logged time of the last of size entries, or the
// epoch for an empty log.
func lastTime(ctx context.Context, s Storage, size int64) (time.Time, error) {
	if size == 0 {
		return minTime, nil
	}
	if lt, ok := s.(LastTimer); ok {
		if t, ok := lt.LastTime(size); ok {
			return t, nil
		}
	}
	es, _, err := ReadEntries(ctx, s, size-1, size)
	if err != nil {
		return time.Time{}, err
	}
	return es[0].Time, nil
}

// LastTimer is implemented by a [Storage] that may know the logged time of
// its last entry without reading and parsing it, such as a cache kept by the
// transaction that appended that entry. [Log.Append] asks it before reading
// the entry.
type LastTimer interface {
	// LastTime returns the logged time of entry size-1 of a log of the
	// given size, and false when it does not know it.
	LastTime(size int64) (time.Time, bool)
}

// Checkpoint returns the log's current checkpoint, unsigned.
func (l *Log) Checkpoint(ctx context.Context, s Storage) (*Checkpoint, error) {
	size, err := s.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading log size: %w", err)
	}
	return l.checkpointAt(ctx, s, size)
}

func (l *Log) checkpointAt(ctx context.Context, s Storage, size int64) (*Checkpoint, error) {
	root, err := TreeHash(ctx, s, size)
	if err != nil {
		return nil, err
	}
	t, err := lastTime(ctx, s, size)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Origin: l.origin, Size: size, Root: root, Time: t}, nil
}

// Sign signs the log's current checkpoint with the log key and checks the
// result with the log's public key before returning it.
func (l *Log) Sign(ctx context.Context, s Storage) (*SignedCheckpoint, error) {
	return l.SignExtending(ctx, s, nil)
}

// SignExtending is [Log.Sign] that first proves the tree it is about to
// sign extends prev, a checkpoint signed before (nil: none): an RFC 6962
// consistency proof from prev.Size to the current size, computed from the
// stored hashes, must verify against prev.Root (see [CheckExtends]). A log
// whose entries and hashes were rewritten below prev.Size, or that shrank,
// fails with a [ForkError] and nothing is signed.
func (l *Log) SignExtending(ctx context.Context, s Storage, prev *Checkpoint) (*SignedCheckpoint, error) {
	if l.signer == nil {
		return nil, fmt.Errorf("%w: the log has no signer", ErrUnsupportedLogKey)
	}
	c, err := l.Checkpoint(ctx, s)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		if err := CheckExtends(ctx, s, prev, c.Size, c.Root); err != nil {
			return nil, err
		}
	}
	text, err := c.Text()
	if err != nil {
		return nil, err
	}
	ns, err := NewNoteSigner(ctx, l.origin, l.signer)
	if err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: string(text)}, ns)
	if err != nil {
		return nil, fmt.Errorf("ledger: signing checkpoint at size %d: %w", c.Size, err)
	}
	sc, err := OpenCheckpoint(signed, l.origin, l.signer.Public())
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint just signed does not verify: %w", err)
	}
	return sc, nil
}
