// Package tufrepo is both sides of the coordinator's TUF protocol: Repo
// serves the policy as a TUF repository (root and targets as the
// administrators signed them, snapshot and timestamp signed by the online
// key) and Fetch brings a client's policy up to date from it with
// go-tuf's updater, from a pinned root.
package tufrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
)

// Default lifetimes of the metadata the online key signs. The timestamp
// is short-lived (freeze protection: a client refuses a timestamp past its
// expiry) and re-signed once half its lifetime has passed.
const (
	DefaultTimestampExpiry = 24 * time.Hour
	DefaultSnapshotExpiry  = 7 * 24 * time.Hour
)

// StateSubdir is the folder of the coordinator's state directory that keeps the
// signed snapshot.json and timestamp.json, so versions only ever increase
// across restarts.
const StateSubdir = "tuf"

// Config configures a [Repo].
type Config struct {
	// Signer is the online key: the key the trust root gives the snapshot
	// and timestamp roles ('quorate policy online-key').
	Signer keys.Signer
	// StateDir keeps StateDir/tuf/snapshot.json and timestamp.json.
	StateDir string
	// Source holds the published root and targets versions by number
	// (the trust directory's history).
	Source          policy.Source
	TimestampExpiry time.Duration // default DefaultTimestampExpiry
	SnapshotExpiry  time.Duration // default DefaultSnapshotExpiry
	Clock           func() time.Time
	Logger          *zap.Logger
}

// Repo serves the coordinator's policy as a TUF repository with
// consistent snapshots (root.json's consistent_snapshot is true, as
// author.Init makes it): N.root.json for every published root version,
// timestamp.json, N.snapshot.json and N.targets.json (and, for clients
// without consistent snapshots, root.json, snapshot.json, targets.json).
// Root and targets are the administrators' signed documents; snapshot and
// timestamp are signed by the online key. Snapshot and timestamp versions
// are kept in the state directory before being served, so a restart never
// serves a lower version. A Repo is safe for concurrent use.
type Repo struct {
	cfg Config

	mu    sync.RWMutex
	st    *state
	stale error // set when the repository could not follow the policy
}

// state is one consistent state of the repository.
type state struct {
	trust               *policy.Trust
	root, targets       []byte
	snapshot, timestamp []byte
	snap                *metadata.Metadata[metadata.SnapshotType]
	ts                  *metadata.Metadata[metadata.TimestampType]
}

// New opens the repository's state and signs what the trust t
// needs: a new snapshot when the policy version changed or the snapshot
// is due, a new timestamp likewise.
func New(ctx context.Context, cfg Config, t *policy.Trust) (*Repo, error) {
	if cfg.Signer == nil || cfg.StateDir == "" || cfg.Source == nil {
		return nil, errors.New("tufrepo: a TUF repository needs an online key, a state directory and the trust source")
	}
	if cfg.TimestampExpiry <= 0 {
		cfg.TimestampExpiry = DefaultTimestampExpiry
	}
	if cfg.SnapshotExpiry <= 0 {
		cfg.SnapshotExpiry = DefaultSnapshotExpiry
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, StateSubdir), 0o700); err != nil {
		return nil, fmt.Errorf("creating the TUF state directory: %w", err)
	}
	r := &Repo{cfg: cfg}
	if err := r.Update(ctx, t); err != nil {
		return nil, err
	}
	return r, nil
}

// Update makes the repository serve trust t, signing a new snapshot and
// timestamp where needed. On failure the repository stops serving
// timestamp and snapshot (clients keep their last trusted metadata until
// it expires) rather than serve metadata that points at an older policy.
func (r *Repo) Update(ctx context.Context, t *policy.Trust) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.next(ctx, t)
	if err != nil {
		r.stale = err
		r.cfg.Logger.Error("TUF repository not updated; snapshot and timestamp are withheld", zap.Error(err))
		return err
	}
	r.st, r.stale = st, nil
	return nil
}

// Refresh re-signs the timestamp (and snapshot) when due.
func (r *Repo) Refresh(ctx context.Context) error {
	r.mu.RLock()
	st := r.st
	r.mu.RUnlock()
	if st == nil {
		return errors.New("TUF repository has no state")
	}
	return r.Update(ctx, st.trust)
}

// Run refreshes the repository every interval until ctx ends.
func (r *Repo) Run(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("refreshing TUF timestamp", zap.Error(err))
		}
	}
}

func (r *Repo) path(role string) string {
	return filepath.Join(r.cfg.StateDir, StateSubdir, role+".json")
}

// next computes (and persists) the state serving t.
func (r *Repo) next(ctx context.Context, t *policy.Trust) (*state, error) {
	pub := r.cfg.Signer.Public()
	if err := author.CheckOnlineKey(t.Root, pub); err != nil {
		return nil, fmt.Errorf("--tuf-key: %w", err)
	}
	now := r.cfg.Clock().UTC()
	st := &state{trust: t}
	var err error
	if st.root, st.targets, err = r.published(t); err != nil {
		return nil, err
	}
	oldSnap, oldSnapBytes, err := readTUF(r.path(metadata.SNAPSHOT), metadata.Snapshot().FromBytes)
	if err != nil {
		return nil, err
	}
	oldTS, oldTSBytes, err := readTUF(r.path(metadata.TIMESTAMP), metadata.Timestamp().FromBytes)
	if err != nil {
		return nil, err
	}
	if oldSnap != nil && snapshotCurrent(oldSnap, t, now, r.cfg.SnapshotExpiry) {
		st.snap, st.snapshot = oldSnap, oldSnapBytes
	} else {
		snap := metadata.Snapshot(now.Add(r.cfg.SnapshotExpiry).Truncate(time.Second))
		if oldSnap != nil {
			snap.Signed.Version = oldSnap.Signed.Version + 1
		}
		snap.Signed.Meta = map[string]*metadata.MetaFiles{metadata.TARGETS + ".json": metadata.MetaFile(t.Version())}
		if st.snapshot, err = r.sign(ctx, snap, &snap.Signatures, snap.Signed); err != nil {
			return nil, fmt.Errorf("signing snapshot.json: %w", err)
		}
		if err := atomicfile.Write(r.path(metadata.SNAPSHOT), st.snapshot, 0o600); err != nil {
			return nil, err
		}
		st.snap = snap
	}
	if oldTS != nil && timestampCurrent(oldTS, st, t, now, r.cfg.TimestampExpiry) {
		st.ts, st.timestamp = oldTS, oldTSBytes
		return st, nil
	}
	ts := metadata.Timestamp(now.Add(r.cfg.TimestampExpiry).Truncate(time.Second))
	if oldTS != nil {
		ts.Signed.Version = oldTS.Signed.Version + 1
	}
	sum := sha256.Sum256(st.snapshot)
	ts.Signed.Meta = map[string]*metadata.MetaFiles{metadata.SNAPSHOT + ".json": {
		Version: st.snap.Signed.Version, Length: int64(len(st.snapshot)), Hashes: metadata.Hashes{"sha256": sum[:]},
	}}
	if st.timestamp, err = r.sign(ctx, ts, &ts.Signatures, ts.Signed); err != nil {
		return nil, fmt.Errorf("signing timestamp.json: %w", err)
	}
	if err := atomicfile.Write(r.path(metadata.TIMESTAMP), st.timestamp, 0o600); err != nil {
		return nil, err
	}
	st.ts = ts
	r.cfg.Logger.Info("TUF metadata signed", zap.Int64("timestamp", ts.Signed.Version), zap.Int64("snapshot", st.snap.Signed.Version), zap.Int64("targets", t.Version()))
	return st, nil
}

// published returns root.json and targets.json of t as the source holds
// them, byte for byte as they were signed and published: from the history
// (N.root.json, N.targets.json) or, failing that, the latest files, each
// only if it is t's document. A document the source does not hold (t was
// built otherwise, or the source has moved on since t was loaded) is served
// as go-tuf encodes it, which its signatures still cover (they are over the
// canonical JSON of "signed"), and a warning is logged.
func (r *Repo) published(t *policy.Trust) (root, targets []byte, err error) {
	latestRoot, latestTargets, _ := r.cfg.Source.Latest()
	histRoot, _ := r.cfg.Source.Root(t.Root.Signed.Version)
	histTargets, _ := r.cfg.Source.Targets(t.Version())
	if root, err = pickPublished(metadata.ROOT, t.Root, r.cfg.Logger, histRoot, latestRoot); err != nil {
		return nil, nil, err
	}
	targets, err = pickPublished(metadata.TARGETS, t.Targets, r.cfg.Logger, histTargets, latestTargets)
	return root, targets, err
}

// pickPublished returns the first candidate holding md's very document (it
// parses as md's role and encodes as md does), else md encoded by go-tuf.
func pickPublished[T metadata.Roles](role string, md *metadata.Metadata[T], log *zap.Logger, candidates ...[]byte) ([]byte, error) {
	enc, err := md.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("encoding %s.json: %w", role, err)
	}
	for _, c := range candidates {
		if c == nil {
			continue
		}
		got, err := new(metadata.Metadata[T]).FromBytes(c)
		if err != nil {
			continue
		}
		if again, err := got.ToBytes(false); err == nil && bytes.Equal(again, enc) {
			return c, nil
		}
	}
	log.Warn("serving TUF metadata re-encoded: the trust source does not hold the version loaded", zap.String("role", role))
	return enc, nil
}

// snapshotCurrent reports whether a persisted snapshot can still be
// served for t: it names t's targets version, verifies under t's root and
// has more than half its lifetime left.
func snapshotCurrent(s *metadata.Metadata[metadata.SnapshotType], t *policy.Trust, now time.Time, life time.Duration) bool {
	m := s.Signed.Meta[metadata.TARGETS+".json"]
	return m != nil && m.Version == t.Version() && len(s.Signed.Meta) == 1 &&
		t.Root.VerifyDelegate(metadata.SNAPSHOT, s) == nil && s.Signed.Expires.Sub(now) > life/2
}

// timestampCurrent is snapshotCurrent for a persisted timestamp: it must
// name the snapshot being served, byte for byte.
func timestampCurrent(ts *metadata.Metadata[metadata.TimestampType], st *state, t *policy.Trust, now time.Time, life time.Duration) bool {
	m := ts.Signed.Meta[metadata.SNAPSHOT+".json"]
	return m != nil && m.Version == st.snap.Signed.Version && m.VerifyLengthHashes(st.snapshot) == nil &&
		t.Root.VerifyDelegate(metadata.TIMESTAMP, ts) == nil && ts.Signed.Expires.Sub(now) > life/2
}

// readTUF reads a persisted metadata file; (nil, nil, nil) when absent.
func readTUF[T metadata.Roles](path string, parse func([]byte) (*metadata.Metadata[T], error)) (*metadata.Metadata[T], []byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading TUF state: %w", err)
	}
	md, err := parse(data)
	if err != nil {
		// A corrupt state file cannot tell the last version served:
		// starting again from 1 would look like a rollback to clients.
		return nil, nil, fmt.Errorf("TUF state %s is corrupt (restore it from a backup; its version must not go back): %w", path, err)
	}
	return md, data, nil
}

// sign signs the canonical JSON of signed with the online key, appends the
// signature and returns the metadata's bytes.
func (r *Repo) sign(ctx context.Context, md interface{ ToBytes(bool) ([]byte, error) }, sigs *[]metadata.Signature, signed any) ([]byte, error) {
	canon, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return nil, err
	}
	raw, err := r.cfg.Signer.Sign(ctx, canon)
	if err != nil {
		return nil, err
	}
	*sigs = []metadata.Signature{{KeyID: r.cfg.Signer.Public().ID(), Signature: raw}}
	return md.ToBytes(false)
}

// File returns a metadata file of the repository by name: root.json,
// N.root.json, timestamp.json, snapshot.json, N.snapshot.json,
// targets.json, N.targets.json. Unknown names and versions not held give
// an error of kind httpapi.KindNotFound (a TUF client stops walking the root
// chain at a 404); a repository that could not follow the policy gives
// httpapi.KindUnavailable for timestamp and snapshot.
func (r *Repo) File(name string) ([]byte, error) {
	r.mu.RLock()
	st, stale := r.st, r.stale
	r.mu.RUnlock()
	role, v, ok := parseTUFName(name)
	if !ok {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "no TUF metadata file %q", name)
	}
	if stale != nil && (role == metadata.TIMESTAMP || role == metadata.SNAPSHOT) {
		return nil, httpapi.Errorf(httpapi.KindUnavailable, "the TUF repository could not follow the coordinator's policy: %w", stale)
	}
	switch role {
	case metadata.TIMESTAMP:
		if v != 0 {
			break
		}
		return st.timestamp, nil
	case metadata.SNAPSHOT:
		if v == 0 || v == st.snap.Signed.Version {
			return st.snapshot, nil
		}
	case metadata.ROOT:
		cur := st.trust.Root.Signed.Version
		switch {
		case v == 0 || v == cur:
			return st.root, nil
		case v < cur:
			return r.historic(role, v, r.cfg.Source.Root)
		}
	case metadata.TARGETS:
		cur := st.trust.Version()
		switch {
		case v == 0 || v == cur:
			return st.targets, nil
		case v < cur:
			return r.historic(role, v, r.cfg.Source.Targets)
		}
	}
	return nil, httpapi.Errorf(httpapi.KindNotFound, "the TUF repository holds no %s", name)
}

func (r *Repo) historic(role string, v int64, read func(int64) ([]byte, error)) ([]byte, error) {
	data, err := read(v)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "%s version %d is not in the trust directory's history", role, v)
	}
	if err != nil {
		return nil, &httpapi.Error{Kind: httpapi.KindInternal, Msg: fmt.Sprintf("reading %s version %d", role, v), Err: err}
	}
	return data, nil
}

// Versions returns the versions served: root, targets, snapshot, timestamp.
func (r *Repo) Versions() (root, targets, snapshot, timestamp int64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.st.trust.Root.Signed.Version, r.st.trust.Version(), r.st.snap.Signed.Version, r.st.ts.Signed.Version
}

// OnlineKey is the key signing snapshot and timestamp.
func (r *Repo) OnlineKey() *keys.PublicKey { return r.cfg.Signer.Public() }

// parseTUFName splits "N.role.json" or "role.json" (v = 0).
func parseTUFName(name string) (role string, v int64, ok bool) {
	base, found := strings.CutSuffix(name, ".json")
	if !found {
		return "", 0, false
	}
	if num, rest, dotted := strings.Cut(base, "."); dotted {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 1 || strconv.FormatInt(n, 10) != num {
			return "", 0, false
		}
		base, v = rest, n
	}
	switch base {
	case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return base, v, true
	}
	return "", 0, false
}

// Handler serves GET /v1/tuf/{file} from repo; a nil repo (the
// coordinator serves no TUF repository) answers 404.
func Handler(repo *Repo, log *zap.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if repo == nil {
			httpapi.Fail(log, w, r, httpapi.Errorf(httpapi.KindNotFound, "this coordinator serves no TUF repository (serve --tuf-key)"))
			return
		}
		data, err := repo.File(r.PathValue("file"))
		if err != nil {
			httpapi.Fail(log, w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(data)
	}
}
