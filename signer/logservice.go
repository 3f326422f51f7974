package signer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/ledger"
)

// checkpointer signs checkpoints of a LedgerStore's log with the log key, at
// most one at a time, only when the log has grown, and only over a tree
// proven to extend the last checkpoint it signed (see [Coordinator.OpenLogState]).
type checkpointer struct {
	mu    sync.Mutex
	log   *ledger.Log
	store LedgerStore
	size  int64
	note  []byte
	// last is the anchor: the largest checkpoint this coordinator knows it
	// signed (from the database, the state file or itself), nil before the
	// first. loaded tells it was read; file is the state file ("" none).
	last   *ledger.SignedCheckpoint
	loaded bool
	file   string
	// fault is set, for good, when the log stops extending last.
	fault atomic.Pointer[logFault]
}

type logFault struct{ err error }

// LastCheckpointFile is the name of the state file keeping the last
// checkpoint the coordinator signed, outside the database.
const LastCheckpointFile = "last-checkpoint"

// ErrLogFork reports that the log the database holds no longer extends the
// last checkpoint the coordinator signed: entries and hashes were
// rewritten, or the log or its checkpoints rolled back.
var ErrLogFork = errors.New("transparency log fork detected: the stored log does not extend the last signed checkpoint; refusing to sign checkpoints")

// logs returns the checkpointer, or nil when the coordinator keeps no log.
func (s *Coordinator) logs() *checkpointer { return s.cp }

// ErrNoLog is returned by log endpoints of a coordinator without a log.
var ErrNoLog = errors.New("this coordinator keeps no transparency log (serve --log-key)")

// OpenLogState names the state directory where the coordinator keeps, in
// the file [LastCheckpointFile] written atomically, a copy of the last
// checkpoint it signed, and checks the log now: the database's latest
// checkpoint and the file's are verified with the log key, the larger is
// kept (after proving it extends the smaller), both places are brought up
// to it, and the stored tree must extend it. A fork is not an error here:
// it makes [Coordinator.LogFault] report it (not ready) and no checkpoint is
// signed again. The error is for what cannot be read (an unreadable or
// invalid state file, a failing database). dir "" keeps the anchor in the
// database only. Call it before serving.
func (s *Coordinator) OpenLogState(ctx context.Context, dir string) error {
	c := s.logs()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating the state directory: %w", err)
		}
		c.file = filepath.Join(dir, LastCheckpointFile)
	}
	c.loaded = false
	if err := s.loadAnchor(ctx, c); err != nil {
		return err
	}
	if c.last == nil || c.fault.Load() != nil {
		return nil
	}
	size, err := c.store.Ledger().Size(ctx)
	if err != nil {
		return fmt.Errorf("reading the log size: %w", err)
	}
	root, err := ledger.TreeHash(ctx, c.store.Ledger(), size)
	if err != nil {
		return fmt.Errorf("reading the log's tree: %w", err)
	}
	s.checkExtends(ctx, c, size, root)
	return nil
}

// LogFault reports why the coordinator's log cannot be trusted any more
// (wrapping [ErrLogFork]), or nil. It does not block.
func (s *Coordinator) LogFault() error {
	c := s.logs()
	if c == nil {
		return nil
	}
	if f := c.fault.Load(); f != nil {
		return f.err
	}
	return nil
}

// forked records a fork for good: logged, counted and reported not ready.
func (s *Coordinator) forked(c *checkpointer, err error) {
	err = fmt.Errorf("%w: %w", ErrLogFork, err)
	if c.fault.CompareAndSwap(nil, &logFault{err}) {
		s.log.Error("transparency log fork detected; no checkpoint will be signed until an operator investigates (see docs/runbooks)", zap.Error(err))
	}
	s.metrics.logFork()
}

// checkExtends marks a fork unless the stored tree of size and root
// extends the anchor.
func (s *Coordinator) checkExtends(ctx context.Context, c *checkpointer, size int64, root tlog.Hash) {
	err := ledger.CheckExtends(ctx, c.store.Ledger(), &c.last.Checkpoint, size, root)
	if errors.Is(err, ledger.ErrFork) {
		s.forked(c, err)
	} else if err != nil {
		s.log.Warn("checking the log against the last signed checkpoint", zap.Error(err))
	}
}

// loadAnchor reads the last signed checkpoint from the database and the
// state file, once. Called with c.mu held.
func (s *Coordinator) loadAnchor(ctx context.Context, c *checkpointer) error {
	if c.loaded {
		return nil
	}
	var db, file *ledger.SignedCheckpoint
	_, note, err := c.store.LatestCheckpoint(ctx)
	switch {
	case err == nil:
		if db, err = ledger.OpenCheckpoint(note, c.log.Origin(), c.log.PublicKey()); err != nil {
			// Only the log key signs checkpoints: one that does not verify
			// was put in the database by someone else.
			s.forked(c, fmt.Errorf("the database's latest checkpoint: %w", err))
			c.loaded = true
			return nil
		}
	case !errors.Is(err, ErrNotFound):
		return storeError(err, "")
	}
	if c.file != "" {
		data, err := os.ReadFile(c.file)
		switch {
		case err == nil:
			if file, err = ledger.OpenCheckpoint(data, c.log.Origin(), c.log.PublicKey()); err != nil {
				return fmt.Errorf("state file %s: %w", c.file, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("reading the state file: %w", err)
		}
	}
	c.loaded = true
	last := db
	switch {
	case db == nil:
		last = file
	case file == nil:
	default:
		small, large, smallFrom := db, file, "the database's"
		if file.Size < db.Size {
			small, large, smallFrom = file, db, "the state file's"
		}
		last = large
		if err := ledger.CheckExtends(ctx, c.store.Ledger(), &small.Checkpoint, large.Size, large.Root); err != nil {
			if !errors.Is(err, ledger.ErrFork) && !errors.Is(err, ledger.ErrOutOfRange) {
				return fmt.Errorf("comparing the database's and the state file's last checkpoints: %w", err)
			}
			s.forked(c, fmt.Errorf("%s last checkpoint (size %d) and the larger one (size %d) are not consistent in the stored log: %w", smallFrom, small.Size, large.Size, err))
		}
	}
	if last == nil {
		return nil
	}
	c.last, c.size, c.note = last, last.Size, last.Note
	if err := c.persist(ctx, last, db, file); err != nil {
		return err
	}
	return nil
}

// persist writes cp to the state file and the database where they hold an
// older one (had), file first: the database is the one an attacker edits.
func (c *checkpointer) persist(ctx context.Context, cp, hadDB, hadFile *ledger.SignedCheckpoint) error {
	if c.file != "" && (hadFile == nil || hadFile.Size < cp.Size) {
		if err := atomicfile.Write(c.file, cp.Note, 0o600); err != nil {
			return &Error{Kind: KindUnavailable, Msg: "keeping the signed checkpoint in the state directory", Err: err}
		}
	}
	if hadDB == nil || hadDB.Size < cp.Size {
		if err := c.store.PutCheckpoint(ctx, cp.Size, cp.Note); err != nil {
			return storeError(err, "")
		}
	}
	return nil
}

// Checkpoint returns the latest signed checkpoint, signing a new one first
// when the log has grown past the last one (or when need > its size). It
// signs only a tree proven to extend the last checkpoint signed; after a
// fork it signs nothing and serves the last checkpoint signed before it.
func (s *Coordinator) Checkpoint(ctx context.Context, need int64) (int64, []byte, error) {
	c := s.logs()
	if c == nil {
		return 0, nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.loadAnchor(ctx, c); err != nil {
		return 0, nil, err
	}
	if f := c.fault.Load(); f != nil {
		if c.note != nil && need <= c.size {
			return c.size, c.note, nil
		}
		return 0, nil, &Error{Kind: KindUnavailable, Msg: f.err.Error(), Err: f.err}
	}
	size, err := c.store.Ledger().Size(ctx)
	if err != nil {
		return 0, nil, storeError(err, "")
	}
	if c.note != nil && size == c.size && need <= c.size {
		// Nothing to sign: still check the stored tree is the signed one,
		// so a rewrite is noticed without waiting for the next entry.
		if root, err := ledger.TreeHash(ctx, c.store.Ledger(), size); err == nil {
			s.checkExtends(ctx, c, size, root)
		}
		return c.size, c.note, nil
	}
	var prev *ledger.Checkpoint
	if c.last != nil {
		prev = &c.last.Checkpoint
	}
	cp, err := c.log.SignExtending(ctx, c.store.Ledger(), prev)
	if errors.Is(err, ledger.ErrFork) {
		s.forked(c, err)
		if c.note != nil && need <= c.size {
			return c.size, c.note, nil
		}
		return 0, nil, &Error{Kind: KindUnavailable, Msg: c.fault.Load().err.Error(), Err: c.fault.Load().err}
	}
	if err != nil {
		if c.note != nil && need <= c.size {
			// The log key or the log's storage is failing: keep serving the
			// last signed checkpoint, so auditors see what the entries no
			// longer match.
			s.log.Error("signing a log checkpoint failed; serving the last one", zap.Int64("size", c.size), zap.Error(err))
			return c.size, c.note, nil
		}
		return 0, nil, &Error{Kind: KindUnavailable, Msg: "signing a log checkpoint failed", Err: err}
	}
	if cp.Size < need {
		return 0, nil, errorf(KindInternal, "log has %d entries, %d needed", cp.Size, need)
	}
	if err := c.persist(ctx, cp, c.last, c.last); err != nil {
		return 0, nil, err
	}
	c.last, c.size, c.note = cp, cp.Size, cp.Note
	return c.size, c.note, nil
}

// RunCheckpoints signs a checkpoint every interval while the log grows.
func (s *Coordinator) RunCheckpoints(ctx context.Context, interval time.Duration) {
	if s.logs() == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, _, err := s.Checkpoint(ctx, 0); err != nil && ctx.Err() == nil {
				s.log.Warn("signing checkpoint", zap.Error(err))
			}
		}
	}
}

// Bundle returns the log bundle of a complete request: the inclusion proofs
// of its opening, of each accepted partial signature and of the composite,
// against a signed checkpoint that covers them.
func (s *Coordinator) Bundle(ctx context.Context, id string) ([]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != Complete {
		return nil, errorf(KindNotPending, "request %s is %s: the bundle comes with the composite attestation", id, r.State)
	}
	indexes := []int64{r.LogIndex}
	for _, p := range r.Signatures {
		indexes = append(indexes, p.LogIndex)
	}
	indexes = append(indexes, r.EmittedIndex)
	need := int64(0)
	for _, i := range indexes {
		if i < 0 {
			return nil, errorf(KindNotFound, "request %s was not (wholly) logged: it predates the coordinator's transparency log", id)
		}
		need = max(need, i+1)
	}
	_, note, err := s.Checkpoint(ctx, need)
	if err != nil {
		return nil, err
	}
	cp, err := ledger.OpenCheckpoint(note, c.log.Origin(), c.log.PublicKey())
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "the stored checkpoint does not verify", Err: err}
	}
	b, err := ledger.NewBundle(ctx, c.store.Ledger(), cp, indexes...)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: fmt.Sprintf("building the log bundle of request %s", id), Err: err}
	}
	return b.Marshal()
}

// MaxLogEntries caps one page of log entries.
const MaxLogEntries = 1000

// LogEntries returns the raw entries [start, end) of the log.
func (s *Coordinator) LogEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	if start < 0 || end < start || end-start > MaxLogEntries {
		return nil, errorf(KindInvalid, "entries: want 0 <= start <= end and at most %d entries", MaxLogEntries)
	}
	size, err := c.store.Ledger().Size(ctx)
	if err != nil {
		return nil, storeError(err, "")
	}
	end = min(end, size)
	if start >= end {
		return [][]byte{}, nil
	}
	out, err := c.store.Ledger().ReadEntries(ctx, start, end)
	if err != nil {
		return nil, storeError(err, "")
	}
	return out, nil
}

// InclusionProof proves entry index is in the tree of the given size.
func (s *Coordinator) InclusionProof(ctx context.Context, index, size int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	p, err := ledger.InclusionProof(ctx, c.store.Ledger(), index, size)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(p), nil
}

// ConsistencyProof proves the tree of size old is a prefix of the tree of size new.
func (s *Coordinator) ConsistencyProof(ctx context.Context, old, new int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	p, err := ledger.ConsistencyProof(ctx, c.store.Ledger(), old, new)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(p), nil
}

func proofError(err error) error {
	if errors.Is(err, ledger.ErrOutOfRange) {
		return errorf(KindInvalid, "%w", err)
	}
	return storeError(err, "")
}

func hashes[H ~[32]byte](hs []H) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = append([]byte(nil), h[:]...)
	}
	return out
}

// MaxLogHashes caps one page of stored hashes.
const MaxLogHashes = 4096

// StoredHashes returns the log's stored hashes [start, end) in tlog's
// stored-hash numbering, so an auditor whose recomputed root differs can
// locate the entry that changed (ledger.AuditConfig.Reference).
func (s *Coordinator) StoredHashes(ctx context.Context, start, end int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	if start < 0 || end < start || end-start > MaxLogHashes {
		return nil, errorf(KindInvalid, "hashes: want 0 <= start <= end and at most %d hashes", MaxLogHashes)
	}
	idx := make([]int64, 0, end-start)
	for i := start; i < end; i++ {
		idx = append(idx, i)
	}
	hs, err := c.store.Ledger().ReadHashes(ctx, idx)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(hs), nil
}
