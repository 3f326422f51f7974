// Package ledgerapi is the serving side of the coordinator's ledger (its
// transparency log): it signs checkpoints, only over a tree proven to
// extend the last one it signed (fork detection, with a copy of the last
// checkpoint in the state directory), and serves entries, inclusion and
// consistency proofs, stored hashes and request bundles over HTTP.
package ledgerapi

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
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
	"github.com/quorate-dev/quorate/signer/internal/storeerr"
)

// Store is what the ledger's serving side needs of the coordinator's
// store (signer.LedgerStore has it).
type Store interface {
	// Ledger is a read view of the log.
	Ledger() ledger.Storage
	// PutCheckpoint stores a signed checkpoint of the given tree size.
	PutCheckpoint(ctx context.Context, size int64, note []byte) error
	// LatestCheckpoint returns the signed checkpoint of the largest size
	// stored, or an error wrapping signer.ErrNotFound.
	LatestCheckpoint(ctx context.Context) (size int64, note []byte, err error)
}

// Config configures a [Server].
type Config struct {
	Ledger *ledger.Log // signs checkpoints
	Store  Store
	Logger *zap.Logger // nil: none
	// OnFork, if set, is called each time a fork is seen (a metric).
	OnFork func()
	// OnState, if set, is called with what the server saw of its log each
	// time it reads the log's size to sign a checkpoint (every
	// RunCheckpoints interval, and when a checkpoint is asked for):
	// entries, the log's size, and checkpoint, the size of the latest
	// checkpoint the server signed or loaded (0: none). entries above
	// checkpoint for long means checkpoints are not being signed (the
	// log key failing): entries there are not yet provable to anyone.
	// For metrics; it must not block.
	OnState func(entries, checkpoint int64)
}

// Server signs checkpoints of the store's log with the log key, at most
// one at a time, only when the log has grown, and only over a tree proven
// to extend the last checkpoint it signed (see [Server.OpenState]), and
// serves the log. Its methods are safe for concurrent use; a nil *Server
// (a coordinator without a ledger) answers [ErrNoLedger].
type Server struct {
	mu     sync.Mutex
	log    *ledger.Log
	store  Store
	logger *zap.Logger
	onFork func()
	state  func(entries, checkpoint int64)
	size   int64
	note   []byte
	// last is the anchor: the largest checkpoint this coordinator knows it
	// signed (from the database, the state file or itself), nil before the
	// first. loaded tells it was read; file is the state file ("" none).
	last   *ledger.SignedCheckpoint
	loaded bool
	file   string
	// fault is set, for good, when the log stops extending last.
	fault atomic.Pointer[fault]
	// evidence collects witness cosignatures and timestamps, or nil.
	evidence Evidence
}

// Evidence collects witness cosignatures and RFC 3161 timestamps of the
// checkpoints the server signs (signer/witnessing implements it).
type Evidence interface {
	// Signed hands over a newly signed checkpoint; it must not block.
	Signed(size int64, note []byte)
	// Cosigned returns the signed checkpoint of size with the cosignature
	// lines collected so far.
	Cosigned(size int64, note []byte) []byte
	// Timestamps returns the tokens collected for the checkpoint of size.
	Timestamps(size int64) [][]byte
	// BestNote returns the smallest checkpoint of a size in [need, upTo]
	// that reached its witness and TSA quorums, with its tokens.
	BestNote(need, upTo int64) (note []byte, tokens [][]byte, ok bool)
}

// SetEvidence makes the server hand each checkpoint it signs to e, serve
// checkpoints with their cosignatures, and build bundles over the
// smallest checkpoint with complete evidence. Call it before serving.
func (c *Server) SetEvidence(e Evidence) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evidence = e
	if c.last != nil {
		e.Signed(c.last.Size, c.last.Note)
	}
}

// cosigned is note, the checkpoint of size, with its cosignatures.
func (c *Server) cosigned(size int64, note []byte) []byte {
	c.mu.Lock()
	e := c.evidence
	c.mu.Unlock()
	if e == nil {
		return note
	}
	return e.Cosigned(size, note)
}

type fault struct{ err error }

// LastCheckpointFile is the name of the state file keeping the last
// checkpoint the coordinator signed, outside the database.
const LastCheckpointFile = "last-checkpoint"

// ErrFork reports that the log the database holds no longer extends the
// last checkpoint the coordinator signed: entries and hashes were
// rewritten, or the log or its checkpoints rolled back.
var ErrFork = errors.New("transparency log fork detected: the stored log does not extend the last signed checkpoint; refusing to sign checkpoints")

// ErrNoLedger is returned by the ledger endpoints of a coordinator without
// a ledger.
var ErrNoLedger = errors.New("this coordinator keeps no transparency log (serve --log-key)")

// New returns the serving side of cfg.Ledger.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	state := cfg.OnState
	if state == nil {
		state = func(int64, int64) {}
	}
	return &Server{log: cfg.Ledger, store: cfg.Store, logger: cfg.Logger, onFork: cfg.OnFork, state: state}
}

// OpenState names the state directory where the coordinator keeps, in
// the file [LastCheckpointFile] written atomically, a copy of the last
// checkpoint it signed, and checks the log now: the database's latest
// checkpoint and the file's are verified with the log key, the larger is
// kept (after proving it extends the smaller), both places are brought up
// to it, and the stored tree must extend it. A fork is not an error here:
// it makes [Server.Fault] report it (not ready) and no checkpoint is
// signed again. The error is for what cannot be read (an unreadable or
// invalid state file, a failing database). dir "" keeps the anchor in the
// database only. Call it before serving.
func (c *Server) OpenState(ctx context.Context, dir string) error {
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
	if err := c.loadAnchor(ctx); err != nil {
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
	c.checkExtends(ctx, size, root)
	return nil
}

// Fault reports why the coordinator's log cannot be trusted any more
// (wrapping [ErrFork]), or nil. It does not block.
func (c *Server) Fault() error {
	if c == nil {
		return nil
	}
	if f := c.fault.Load(); f != nil {
		return f.err
	}
	return nil
}

// forked records a fork for good: logged, counted and reported not ready.
func (c *Server) forked(err error) {
	err = fmt.Errorf("%w: %w", ErrFork, err)
	if c.fault.CompareAndSwap(nil, &fault{err}) {
		c.logger.Error("transparency log fork detected; no checkpoint will be signed until an operator investigates (see docs/runbooks)", zap.Error(err))
	}
	if c.onFork != nil {
		c.onFork()
	}
}

// checkExtends marks a fork unless the stored tree of size and root
// extends the anchor.
func (c *Server) checkExtends(ctx context.Context, size int64, root tlog.Hash) {
	err := ledger.CheckExtends(ctx, c.store.Ledger(), &c.last.Checkpoint, size, root)
	if errors.Is(err, ledger.ErrFork) {
		c.forked(err)
	} else if err != nil {
		c.logger.Warn("checking the log against the last signed checkpoint", zap.Error(err))
	}
}

// loadAnchor reads the last signed checkpoint from the database and the
// state file, once. Called with c.mu held.
func (c *Server) loadAnchor(ctx context.Context) error {
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
			c.forked(fmt.Errorf("the database's latest checkpoint: %w", err))
			c.loaded = true
			return nil
		}
	case !errors.Is(err, storeerr.ErrNotFound):
		return storeerr.Kinded(err, "")
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
			c.forked(fmt.Errorf("%s last checkpoint (size %d) and the larger one (size %d) are not consistent in the stored log: %w", smallFrom, small.Size, large.Size, err))
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
func (c *Server) persist(ctx context.Context, cp, hadDB, hadFile *ledger.SignedCheckpoint) error {
	if c.file != "" && (hadFile == nil || hadFile.Size < cp.Size) {
		if err := atomicfile.Write(c.file, cp.Note, 0o600); err != nil {
			return &httpapi.Error{Kind: httpapi.KindUnavailable, Msg: "keeping the signed checkpoint in the state directory", Err: err}
		}
	}
	if hadDB == nil || hadDB.Size < cp.Size {
		if err := c.store.PutCheckpoint(ctx, cp.Size, cp.Note); err != nil {
			return storeerr.Kinded(err, "")
		}
	}
	return nil
}

// Checkpoint returns the latest signed checkpoint, signing a new one first
// when the log has grown past the last one (or when need > its size). It
// signs only a tree proven to extend the last checkpoint signed; after a
// fork it signs nothing and serves the last checkpoint signed before it.
func (c *Server) Checkpoint(ctx context.Context, need int64) (int64, []byte, error) {
	if c == nil {
		return 0, nil, httpapi.Errorf(httpapi.KindNotFound, "%w", ErrNoLedger)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadAnchor(ctx); err != nil {
		return 0, nil, err
	}
	if f := c.fault.Load(); f != nil {
		if c.note != nil && need <= c.size {
			return c.size, c.note, nil
		}
		return 0, nil, &httpapi.Error{Kind: httpapi.KindUnavailable, Msg: f.err.Error(), Err: f.err}
	}
	size, err := c.store.Ledger().Size(ctx)
	if err != nil {
		return 0, nil, storeerr.Kinded(err, "")
	}
	if c.note != nil && size == c.size && need <= c.size {
		c.state(size, c.size)
		// Nothing to sign: still check the stored tree is the signed one,
		// so a rewrite is noticed without waiting for the next entry.
		if root, err := ledger.TreeHash(ctx, c.store.Ledger(), size); err == nil {
			c.checkExtends(ctx, size, root)
		}
		return c.size, c.note, nil
	}
	var prev *ledger.Checkpoint
	if c.last != nil {
		prev = &c.last.Checkpoint
	}
	cp, err := c.log.SignExtending(ctx, c.store.Ledger(), prev)
	if errors.Is(err, ledger.ErrFork) {
		c.forked(err)
		if c.note != nil && need <= c.size {
			return c.size, c.note, nil
		}
		return 0, nil, &httpapi.Error{Kind: httpapi.KindUnavailable, Msg: c.fault.Load().err.Error(), Err: c.fault.Load().err}
	}
	if err != nil {
		c.state(size, c.size)
		if c.note != nil && need <= c.size {
			// The log key or the log's storage is failing: keep serving the
			// last signed checkpoint, so auditors see what the entries no
			// longer match.
			c.logger.Error("signing a log checkpoint failed; serving the last one", zap.Int64("size", c.size), zap.Error(err))
			return c.size, c.note, nil
		}
		return 0, nil, &httpapi.Error{Kind: httpapi.KindUnavailable, Msg: "signing a log checkpoint failed", Err: err}
	}
	if cp.Size < need {
		return 0, nil, httpapi.Errorf(httpapi.KindInternal, "log has %d entries, %d needed", cp.Size, need)
	}
	if err := c.persist(ctx, cp, c.last, c.last); err != nil {
		return 0, nil, err
	}
	c.last, c.size, c.note = cp, cp.Size, cp.Note
	c.state(max(size, cp.Size), cp.Size)
	if c.evidence != nil {
		c.evidence.Signed(cp.Size, cp.Note)
	}
	return c.size, c.note, nil
}

// RunCheckpoints signs a checkpoint every interval while the log grows.
func (c *Server) RunCheckpoints(ctx context.Context, interval time.Duration) {
	if c == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, _, err := c.Checkpoint(ctx, 0); err != nil && ctx.Err() == nil {
				c.logger.Warn("signing checkpoint", zap.Error(err))
			}
		}
	}
}

// Bundle returns the log bundle of entries indexes (a complete request's
// opening, each accepted partial signature and the composite): their
// inclusion proofs against a signed checkpoint that covers them.
func (c *Server) Bundle(ctx context.Context, indexes []int64) ([]byte, error) {
	if c == nil {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "%w", ErrNoLedger)
	}
	need := int64(0)
	for _, i := range indexes {
		need = max(need, i+1)
	}
	size, note, err := c.Checkpoint(ctx, need)
	if err != nil {
		return nil, err
	}
	// With witnesses or TSAs, the smallest checkpoint covering the entries
	// whose evidence is complete gives the tightest time bound; until
	// there is one, the latest with what it has so far.
	var tokens [][]byte
	c.mu.Lock()
	e := c.evidence
	c.mu.Unlock()
	if e != nil {
		if best, toks, ok := e.BestNote(need, size); ok {
			note, tokens = best, toks
		} else {
			note, tokens = e.Cosigned(size, note), e.Timestamps(size)
		}
	}
	cp, err := ledger.OpenCheckpoint(note, c.log.Origin(), c.log.PublicKey())
	if err != nil {
		return nil, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "the stored checkpoint does not verify", Err: err}
	}
	b, err := ledger.NewBundle(ctx, c.store.Ledger(), cp, indexes...)
	if err != nil {
		return nil, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "building the log bundle", Err: err}
	}
	b.Timestamps = tokens
	return b.Marshal()
}

// MaxEntries caps one page of log entries (the page size clients use).
const MaxEntries = client.MaxLogEntries

// Entries returns the raw entries [start, end) of the log.
func (c *Server) Entries(ctx context.Context, start, end int64) ([][]byte, error) {
	if c == nil {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "%w", ErrNoLedger)
	}
	if start < 0 || end < start || end-start > MaxEntries {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "entries: want 0 <= start <= end and at most %d entries", MaxEntries)
	}
	size, err := c.store.Ledger().Size(ctx)
	if err != nil {
		return nil, storeerr.Kinded(err, "")
	}
	end = min(end, size)
	if start >= end {
		return [][]byte{}, nil
	}
	out, err := c.store.Ledger().ReadEntries(ctx, start, end)
	if err != nil {
		return nil, storeerr.Kinded(err, "")
	}
	return out, nil
}

// InclusionProof proves entry index is in the tree of the given size.
func (c *Server) InclusionProof(ctx context.Context, index, size int64) ([][]byte, error) {
	if c == nil {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "%w", ErrNoLedger)
	}
	p, err := ledger.InclusionProof(ctx, c.store.Ledger(), index, size)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(p), nil
}

// ConsistencyProof proves the tree of size old is a prefix of the tree of size new.
func (c *Server) ConsistencyProof(ctx context.Context, old, new int64) ([][]byte, error) {
	if c == nil {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "%w", ErrNoLedger)
	}
	p, err := ledger.ConsistencyProof(ctx, c.store.Ledger(), old, new)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(p), nil
}

func proofError(err error) error {
	if errors.Is(err, ledger.ErrOutOfRange) {
		return httpapi.Errorf(httpapi.KindInvalid, "%w", err)
	}
	return storeerr.Kinded(err, "")
}

func hashes[H ~[32]byte](hs []H) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = append([]byte(nil), h[:]...)
	}
	return out
}

// MaxHashes caps one page of stored hashes (the page size clients use).
const MaxHashes = client.MaxStoredHashes

// StoredHashes returns the log's stored hashes [start, end) in tlog's
// stored-hash numbering, so an auditor whose recomputed root differs can
// locate the entry that changed (ledger.AuditConfig.Reference).
func (c *Server) StoredHashes(ctx context.Context, start, end int64) ([][]byte, error) {
	if c == nil {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "%w", ErrNoLedger)
	}
	if start < 0 || end < start || end-start > MaxHashes {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "hashes: want 0 <= start <= end and at most %d hashes", MaxHashes)
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
