// Package witnessing is the coordinator's side of independent evidence for
// its ledger: it submits each new signed checkpoint to the policy's
// witnesses over c2sp.org/tlog-witness (package ledger/witness) and asks
// the configured RFC 3161 timestamp authorities to timestamp it (package
// ledger/timestamp), in the background, and keeps what comes back — the
// checkpoint with its cosignature lines, and the tokens — so the ledger
// serves cosigned checkpoints and puts the evidence in bundles.
//
// # Never on the write path
//
// [Witnessing.Signed] only records the latest checkpoint and wakes the
// background workers ([Witnessing.Run]); it never blocks. Each witness and
// each TSA has its own worker, which submits the latest checkpoint it has
// not answered for, retries with exponential backoff while that fails, and
// moves on to a newer checkpoint as soon as one is signed (it covers every
// earlier entry). A witness or TSA that is down or slow delays only its
// own cosignature or token; the coordinator's writes never wait for them.
//
// # Where the evidence is kept
//
// In the state directory, one file per checkpoint (witnessed/<size>.json,
// written atomically), not in the database: the evidence is
// self-authenticating (a verifier checks it against the policy's keys and
// certificates, never trusting the coordinator for it), so it needs no
// transaction with the log, and a replica of a PostgreSQL deployment keeps
// the evidence of the checkpoints it signed and submitted. Losing the
// directory loses only tight time bounds of past checkpoints: the next
// checkpoint is cosigned and timestamped again. Replicas of a PostgreSQL
// deployment also share complete evidence through the database
// ([SharedEvidence]), so any of them can build a bundle over a checkpoint
// another got the quorums for.
//
// # Choosing evidence for a bundle
//
// [Witnessing.Best] returns the smallest checkpoint covering the entries
// whose evidence is complete (the witness quorum and the TSA quorum):
// its time bound is the tightest the coordinator can prove.
package witnessing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/witness"
)

// Config configures [New].
type Config struct {
	// Witnesses are the clients of the policy's witnesses; WitnessQuorum
	// how many must cosign (the policy's quorum).
	Witnesses     []*witness.Client
	WitnessQuorum int
	// TSAs are the timestamp authorities to ask; TSAQuorum how many tokens
	// a checkpoint needs (the policy's TSA quorum, or 1).
	TSAs      []*timestamp.Client
	TSAQuorum int
	// Prover proves consistency between checkpoints of the log.
	Prover witness.ConsistencyProver
	// Dir is the state directory; evidence goes to Dir/witnessed. "" keeps
	// it in memory only.
	Dir    string
	Logger *zap.Logger
	// Registerer registers the metrics; nil: none.
	Registerer prometheus.Registerer
	// Retry is the first retry delay (default 1s), doubled up to MaxRetry
	// (default 1m). Timeout bounds one submission to a witness or TSA
	// (default 30s).
	Retry, MaxRetry, Timeout time.Duration
	// Clock is the time source for latency metrics (default time.Now).
	Clock func() time.Time
	// Shared, when set, shares complete evidence with the other replicas of
	// the database (see [SharedEvidence]).
	Shared SharedEvidence
	// TSATrust, when set, checks the tokens of evidence read from Shared
	// (the policy's TSAs); without it they are counted, and left to the
	// verifier.
	TSATrust *timestamp.Trust
}

// SharedEvidence is where replicas of one database share the complete
// evidence of their checkpoints (pgstore keeps it in a table): each
// replica signs and submits its own checkpoints of the one log, and any
// replica may build a bundle over a checkpoint another got the quorums
// for. The evidence is self-authenticating — a verifier checks the
// cosignatures and tokens against the policy — and a replica checks the
// witness quorum (and, with [Config.TSATrust], the TSA quorum) of evidence
// it reads before using it.
type SharedEvidence interface {
	// PutEvidence stores the evidence (JSON) of the checkpoint of size.
	PutEvidence(ctx context.Context, size int64, evidence []byte) error
	// SmallestEvidence returns the evidence of the smallest checkpoint of
	// size in [need, upTo] stored, ok false when there is none.
	SmallestEvidence(ctx context.Context, need, upTo int64) (evidence []byte, ok bool, err error)
}

// Evidence is what the coordinator holds for one checkpoint.
type Evidence struct {
	Size int64 `json:"size"`
	// Note is the signed checkpoint with the cosignature lines collected.
	Note string `json:"note"`
	// Cosigners names the witnesses whose cosignature Note carries.
	Cosigners []string `json:"cosigners,omitempty"`
	// Timestamps are RFC 3161 tokens over the checkpoint's text, and
	// TSAs the URLs that issued them.
	Timestamps [][]byte `json:"timestamps,omitempty"`
	TSAs       []string `json:"tsas,omitempty"`
	// Signed is when the coordinator handed the checkpoint over, and
	// Complete when the witness and TSA quorums were first reached.
	Signed   time.Time `json:"signed"`
	Complete time.Time `json:"complete,omitzero"`
}

// Witnessing collects cosignatures and timestamps for a ledger's
// checkpoints. Safe for concurrent use.
type Witnessing struct {
	cfg     Config
	dir     string
	metrics *metrics
	parties []*party
	quorum  *witness.Quorum // the witnesses and their quorum; nil without witnesses

	persistMu sync.Mutex // orders writes of evidence files

	mu      sync.Mutex
	byCkpt  map[int64]*Evidence
	sizes   []int64 // sorted keys of byCkpt
	pending int64   // size of the checkpoint to work on; 0 none
}

// New returns a Witnessing and loads the evidence kept in cfg.Dir.
func New(cfg Config) (*Witnessing, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.MaxRetry < cfg.Retry {
		cfg.MaxRetry = max(time.Minute, cfg.Retry)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if len(cfg.Witnesses) > 0 && (cfg.WitnessQuorum < 1 || cfg.WitnessQuorum > len(cfg.Witnesses)) {
		return nil, fmt.Errorf("witness quorum %d of %d witnesses", cfg.WitnessQuorum, len(cfg.Witnesses))
	}
	if len(cfg.TSAs) > 0 && cfg.TSAQuorum < 1 {
		cfg.TSAQuorum = 1
	}
	if cfg.TSAQuorum > len(cfg.TSAs) {
		return nil, fmt.Errorf("TSA quorum %d of %d timestamp authorities (serve --tsa URL...)", cfg.TSAQuorum, len(cfg.TSAs))
	}
	if len(cfg.Witnesses) > 0 && cfg.Prover == nil {
		return nil, errors.New("witnessing needs a consistency prover")
	}
	w := &Witnessing{cfg: cfg, byCkpt: map[int64]*Evidence{}, metrics: newMetrics(cfg.Registerer)}
	var vs []*witness.Verifier
	for _, c := range cfg.Witnesses {
		w.parties = append(w.parties, w.witnessParty(c))
		vs = append(vs, c.Witness())
	}
	if len(vs) > 0 {
		var err error
		if w.quorum, err = witness.NewQuorum(cfg.WitnessQuorum, vs...); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.TSAs {
		w.parties = append(w.parties, w.tsaParty(c))
	}
	if cfg.Dir != "" {
		w.dir = filepath.Join(cfg.Dir, "witnessed")
		if err := w.load(); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Enabled reports whether there is anyone to ask.
func (w *Witnessing) Enabled() bool {
	return w != nil && len(w.cfg.Witnesses)+len(w.cfg.TSAs) > 0
}

func (w *Witnessing) load() error {
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", w.dir, err)
	}
	des, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", w.dir, err)
	}
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".json")
		size, err := strconv.ParseInt(name, 10, 64)
		if !ok || err != nil {
			continue // temporary files of atomic writes, and anything else
		}
		data, err := os.ReadFile(filepath.Join(w.dir, de.Name()))
		if err != nil {
			return fmt.Errorf("reading witness evidence: %w", err)
		}
		var ev Evidence
		if err := json.Unmarshal(data, &ev); err != nil || ev.Size != size {
			return fmt.Errorf("witness evidence %s is malformed: %v", de.Name(), err)
		}
		w.byCkpt[size] = &ev
		w.sizes = append(w.sizes, size)
	}
	slices.Sort(w.sizes)
	return nil
}

// Signed hands a newly signed checkpoint over. It never blocks.
func (w *Witnessing) Signed(size int64, note []byte) {
	if !w.Enabled() || size <= 0 {
		return
	}
	w.mu.Lock()
	if _, ok := w.byCkpt[size]; !ok {
		w.byCkpt[size] = &Evidence{Size: size, Note: string(note), Signed: w.cfg.Clock()}
		i, _ := slices.BinarySearch(w.sizes, size)
		w.sizes = slices.Insert(w.sizes, i, size)
	}
	if size > w.pending {
		w.pending = size
		w.metrics.witnessesMissing.Set(float64(len(w.cfg.Witnesses) - len(w.byCkpt[size].Cosigners)))
	}
	w.mu.Unlock()
	for _, p := range w.parties {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Cosigned returns note (the signed checkpoint of size) with the
// cosignatures collected for it so far.
func (w *Witnessing) Cosigned(size int64, note []byte) []byte {
	if w == nil {
		return note
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev, ok := w.byCkpt[size]; ok {
		return []byte(ev.Note)
	}
	return note
}

// Timestamps returns the tokens collected for the checkpoint of size.
func (w *Witnessing) Timestamps(size int64) [][]byte {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev, ok := w.byCkpt[size]; ok {
		return slices.Clone(ev.Timestamps)
	}
	return nil
}

// Best returns the evidence of the smallest checkpoint of size at least
// need (and at most upTo) that reached every quorum, or nil: this
// replica's or, with [Config.Shared], one another replica stored, when
// that one is smaller (its bound is tighter).
func (w *Witnessing) Best(need, upTo int64) *Evidence {
	if !w.Enabled() {
		return nil
	}
	ev := w.bestLocal(need, upTo)
	if ev != nil && ev.Size == need {
		return ev // none smaller can cover the entries
	}
	if ev != nil {
		upTo = ev.Size - 1 // another replica's smaller checkpoint bounds tighter
	}
	if shared := w.bestShared(need, upTo); shared != nil {
		return shared
	}
	return ev
}

func (w *Witnessing) bestLocal(need, upTo int64) *Evidence {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, _ := slices.BinarySearch(w.sizes, need)
	for _, s := range w.sizes[i:] {
		if s > upTo {
			break
		}
		if ev := w.byCkpt[s]; w.complete(ev) {
			c := *ev
			c.Timestamps = slices.Clone(ev.Timestamps)
			return &c
		}
	}
	return nil
}

// sharedTimeout bounds one read or write of the shared evidence.
const sharedTimeout = 5 * time.Second

// bestShared is the smallest complete evidence in [need, upTo] another
// replica shared, checked (its note a checkpoint of its size, its witness
// cosignatures against this replica's witnesses and quorum, its tokens
// against Config.TSATrust when set), and kept in memory for the next
// bundles.
func (w *Witnessing) bestShared(need, upTo int64) *Evidence {
	if w.cfg.Shared == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	data, ok, err := w.cfg.Shared.SmallestEvidence(ctx, need, upTo)
	if err != nil {
		w.cfg.Logger.Warn("reading the evidence other replicas shared", zap.Error(err))
		return nil
	}
	if !ok {
		return nil
	}
	var ev Evidence
	if err := json.Unmarshal(data, &ev); err != nil || ev.Size < need || ev.Size > upTo || !w.complete(&ev) || !w.cosignedByQuorum(&ev) || !w.stampedByQuorum(&ev) || !noteOfSize(ev.Note, ev.Size) {
		w.cfg.Logger.Warn("ignoring shared evidence that is malformed, out of range or short of the quorums", zap.Int64("size", ev.Size), zap.Error(err))
		return nil
	}
	w.mu.Lock()
	if _, ok := w.byCkpt[ev.Size]; !ok {
		kept := ev
		w.byCkpt[ev.Size] = &kept
		i, _ := slices.BinarySearch(w.sizes, ev.Size)
		w.sizes = slices.Insert(w.sizes, i, ev.Size)
	}
	w.mu.Unlock()
	return &ev
}

// noteCheckpoint parses the checkpoint a signed note carries.
func noteCheckpoint(note string) (*ledger.Checkpoint, error) {
	text, _, _ := strings.Cut(note, "\n\n")
	return ledger.ParseCheckpoint([]byte(text + "\n"))
}

// noteOfSize reports whether note is a checkpoint of size.
func noteOfSize(note string, size int64) bool {
	cp, err := noteCheckpoint(note)
	return err == nil && cp.Size == size
}

// stampedByQuorum reports whether ev's tokens make the policy's TSA
// quorum over its checkpoint, when the TSAs' trust is known.
func (w *Witnessing) stampedByQuorum(ev *Evidence) bool {
	if w.cfg.TSATrust == nil || w.cfg.TSAQuorum == 0 {
		return true
	}
	cp, err := noteCheckpoint(ev.Note)
	if err != nil {
		return false
	}
	ctext, err := cp.Text()
	if err != nil {
		return false
	}
	// The policy's quorum of distinct authorities, as a verifier counts.
	_, err = w.cfg.TSATrust.Verify(timestamp.CheckpointDigest(ctext), ev.Timestamps)
	return err == nil
}

// cosignedByQuorum reports whether ev's note carries valid cosignatures
// of this replica's witness quorum.
func (w *Witnessing) cosignedByQuorum(ev *Evidence) bool {
	if w.quorum == nil {
		return true
	}
	r, err := w.quorum.Verify([]byte(ev.Note))
	return err == nil && r.Met
}

// BestNote is [Witnessing.Best] as the ledger server wants it: the
// cosigned note and its tokens.
func (w *Witnessing) BestNote(need, upTo int64) ([]byte, [][]byte, bool) {
	ev := w.Best(need, upTo)
	if ev == nil {
		return nil, nil, false
	}
	return []byte(ev.Note), ev.Timestamps, true
}

func (w *Witnessing) complete(ev *Evidence) bool {
	return len(ev.Cosigners) >= w.cfg.WitnessQuorum && len(ev.TSAs) >= w.cfg.TSAQuorum
}

// Run works on the latest checkpoint until ctx ends: each witness and
// each TSA has its own worker, which asks for the latest checkpoint it has
// not answered for, and retries with backoff while it fails; a witness
// that is down or slow delays only its own cosignature, never another's.
func (w *Witnessing) Run(ctx context.Context) {
	if !w.Enabled() {
		return
	}
	var wg sync.WaitGroup
	for _, p := range w.parties {
		wg.Go(func() { w.work(ctx, p) })
	}
	wg.Wait()
}

// supersededError is a witness's answer that it has cosigned a larger
// checkpoint of the log than the one submitted: nothing to retry.
type supersededError struct{ *witness.ConflictError }

func (e *supersededError) Unwrap() error { return e.ConflictError }

// party is a witness or a TSA, as a worker sees it.
type party struct {
	name string
	wake chan struct{}
	// done is the largest checkpoint size the party's worker stopped
	// asking about because it was superseded; only the worker uses it.
	done int64
	// has reports whether ev already holds this party's answer.
	has func(ev *Evidence) bool
	// ask asks for it and returns how to add it to the evidence.
	ask func(ctx context.Context, ev *Evidence) (func(cur *Evidence, now time.Time), error)
}

func (w *Witnessing) witnessParty(c *witness.Client) *party {
	name := c.Witness().Name()
	return &party{name: name, wake: make(chan struct{}, 1),
		has: func(ev *Evidence) bool { return slices.Contains(ev.Cosigners, name) },
		ask: func(ctx context.Context, ev *Evidence) (func(*Evidence, time.Time), error) {
			cs, err := c.AddCheckpoint(ctx, []byte(ev.Note), w.cfg.Prover)
			var conflict *witness.ConflictError
			if errors.As(err, &conflict) && conflict.WitnessSize > conflict.Size {
				// The witness cosigned a larger tree of this log: another
				// replica's checkpoint (replicas of one database sign
				// their own). This one can never be cosigned.
				w.metrics.witnessSuperseded.WithLabelValues(name).Inc()
				return nil, &supersededError{conflict}
			}
			if err != nil {
				w.metrics.witnessFailures.WithLabelValues(name).Inc()
				return nil, err
			}
			return func(cur *Evidence, now time.Time) {
				cur.Note = string(witness.AddCosignatures([]byte(cur.Note), *cs))
				cur.Cosigners = append(cur.Cosigners, name)
				w.metrics.cosignLatency.WithLabelValues(name).Observe(now.Sub(cur.Signed).Seconds())
			}, nil
		}}
}

func (w *Witnessing) tsaParty(c *timestamp.Client) *party {
	return &party{name: c.URL(), wake: make(chan struct{}, 1),
		has: func(ev *Evidence) bool { return slices.Contains(ev.TSAs, c.URL()) },
		ask: func(ctx context.Context, ev *Evidence) (func(*Evidence, time.Time), error) {
			cp, err := noteCheckpoint(ev.Note)
			if err != nil {
				return nil, err
			}
			ctext, err := cp.Text()
			if err != nil {
				return nil, err
			}
			tok, err := c.Timestamp(ctx, timestamp.CheckpointDigest(ctext))
			if err != nil {
				w.metrics.tsaFailures.WithLabelValues(c.URL()).Inc()
				return nil, err
			}
			return func(cur *Evidence, _ time.Time) {
				cur.TSAs = append(cur.TSAs, c.URL())
				cur.Timestamps = append(cur.Timestamps, tok.DER)
			}, nil
		}}
}

// work is one party's loop: answer for the latest checkpoint, retrying
// with backoff while asking fails, moving to a newer checkpoint at once.
func (w *Witnessing) work(ctx context.Context, p *party) {
	delay := w.cfg.Retry
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
		w.mu.Lock()
		size := w.pending
		var ev Evidence
		if cur, ok := w.byCkpt[size]; ok {
			ev = *cur
		}
		w.mu.Unlock()
		if size == 0 || size <= p.done || p.has(&ev) {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		apply, err := p.ask(rctx, &ev)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if superseded := (*supersededError)(nil); errors.As(err, &superseded) {
			// Wait for a newer checkpoint: the next one signed after the
			// other replica's is cosigned as usual.
			p.done, delay = size, w.cfg.Retry
			w.cfg.Logger.Info("the witness has cosigned a larger checkpoint of this log (another replica's); waiting for a newer one",
				zap.String("from", p.name), zap.Int64("size", size), zap.Int64("witnessSize", superseded.WitnessSize))
			continue
		}
		if err != nil {
			w.cfg.Logger.Warn("no cosignature or timestamp for the checkpoint; retrying later", zap.String("from", p.name), zap.Int64("size", size), zap.Duration("retry", delay), zap.Error(err))
			timer.Reset(delay)
			delay = min(2*delay, w.cfg.MaxRetry)
			continue
		}
		delay = w.cfg.Retry
		w.record(size, p, apply)
		w.mu.Lock()
		newer := w.pending != size
		w.mu.Unlock()
		if newer {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	}
}

// record adds an answer to the evidence of the checkpoint of size, updates
// the metrics and keeps the evidence in the state directory.
func (w *Witnessing) record(size int64, p *party, apply func(*Evidence, time.Time)) {
	now := w.cfg.Clock()
	w.persistMu.Lock()
	defer w.persistMu.Unlock()
	w.mu.Lock()
	cur := w.byCkpt[size]
	if !p.has(cur) {
		apply(cur, now)
	}
	completed := false
	if cur.Complete.IsZero() && w.complete(cur) {
		cur.Complete, completed = now, true
		w.metrics.quorumLatency.Observe(now.Sub(cur.Signed).Seconds())
	}
	if size == w.pending {
		w.metrics.witnessesMissing.Set(float64(len(w.cfg.Witnesses) - len(cur.Cosigners)))
	}
	snapshot := *cur
	w.mu.Unlock()
	if completed && w.cfg.Shared != nil {
		w.share(snapshot)
	}
	if w.dir == "" {
		return
	}
	data, err := json.Marshal(snapshot)
	if err == nil {
		err = atomicfile.Write(filepath.Join(w.dir, fmt.Sprintf("%d.json", size)), data, 0o600)
	}
	if err != nil {
		w.cfg.Logger.Error("keeping witness evidence in the state directory", zap.Int64("size", size), zap.Error(err))
	}
}

// share stores complete evidence for the other replicas.
func (w *Witnessing) share(ev Evidence) {
	data, err := json.Marshal(ev)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		err = w.cfg.Shared.PutEvidence(ctx, ev.Size, data)
		cancel()
	}
	if err != nil {
		w.cfg.Logger.Warn("sharing checkpoint evidence with the other replicas", zap.Int64("size", ev.Size), zap.Error(err))
	}
}

type metrics struct {
	cosignLatency     *prometheus.HistogramVec
	quorumLatency     prometheus.Histogram
	witnessFailures   *prometheus.CounterVec
	witnessSuperseded *prometheus.CounterVec
	tsaFailures       *prometheus.CounterVec
	witnessesMissing  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	buckets := prometheus.ExponentialBuckets(0.005, 2, 16)
	m := &metrics{
		cosignLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "quorate_witness_cosign_seconds",
			Help: "Time from signing a checkpoint to receiving a witness's cosignature of it.", Buckets: buckets}, []string{"witness"}),
		quorumLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "quorate_witness_quorum_seconds",
			Help: "Time from signing a checkpoint to holding the witness quorum's cosignatures (and the TSA quorum's tokens) for it.", Buckets: buckets}),
		witnessFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_witness_failures_total",
			Help: "Submissions of a checkpoint to a witness that did not return a cosignature (not counting those superseded)."}, []string{"witness"}),
		witnessSuperseded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_witness_superseded_total",
			Help: "Checkpoints a witness did not cosign because it had cosigned a larger one of the log (another replica's); not retried."}, []string{"witness"}),
		tsaFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_tsa_failures_total",
			Help: "Timestamp requests to a TSA that did not return a valid token."}, []string{"tsa"}),
		witnessesMissing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "quorate_witnesses_missing",
			Help: "Witnesses that have not cosigned the latest checkpoint submitted."}),
	}
	if reg != nil {
		reg.MustRegister(m.cosignLatency, m.quorumLatency, m.witnessFailures, m.witnessSuperseded, m.tsaFailures, m.witnessesMissing)
	}
	return m
}
