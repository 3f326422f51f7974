package witnessing_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/timestamp/tsatest"
	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/ledger/witness/witnesstest"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/witnessing"
)

const origin = "quorate.example/log"

type world struct {
	log   *ledger.Log
	store *ledger.MemoryStorage
	ws    []*witnesstest.Witness
	q     *witness.Quorum
	trust *timestamp.Trust
	n     int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	uri := "file:" + t.TempDir() + "/log.key"
	if _, err := (filekey.Backend{}).Generate(context.Background(), uri, hsm.Ed25519); err != nil {
		t.Fatal(err)
	}
	s, err := filekey.Backend{}.Signer(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(ledger.Config{Origin: origin, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := ledger.VerifierKey(origin, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{log: l, store: ledger.NewMemoryStorage()}
	var vs []*witness.Verifier
	for i := range 2 {
		wt := witnesstest.Start(t, fmt.Sprintf("witness.example/w%d", i+1), origin, vkey)
		w.ws = append(w.ws, wt)
		vs = append(vs, wt.Verifier)
	}
	if w.q, err = witness.NewQuorum(2, vs...); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) grow(t *testing.T, n int) *ledger.SignedCheckpoint {
	t.Helper()
	evs := make([]ledger.Event, n)
	for i := range evs {
		w.n++
		evs[i] = ledger.Event{Type: ledger.RequestOpened, RequestID: fmt.Sprintf("r-%d", w.n),
			PayloadSHA256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", PolicyVersion: 1}
	}
	if _, err := w.log.Append(context.Background(), w.store, evs...); err != nil {
		t.Fatal(err)
	}
	cp, err := w.log.Sign(context.Background(), w.store)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (w *world) clients(t *testing.T) []*witness.Client {
	out := make([]*witness.Client, len(w.ws))
	for i, wt := range w.ws {
		out[i] = wt.Client(t)
	}
	return out
}

// prover proves consistency in the world's log.
func (w *world) prover() witness.ConsistencyProver {
	return witness.ProverFunc(func(ctx context.Context, o, n int64) (tlog.TreeProof, error) {
		return ledger.ConsistencyProof(ctx, w.store, o, n)
	})
}

// replica starts the witnessing of one replica of the log (quick retries),
// sharing evidence through shared when set, until the test ends.
func (w *world) replica(t *testing.T, shared witnessing.SharedEvidence, edit ...func(*witnessing.Config)) (*witnessing.Witnessing, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := witnessing.Config{Witnesses: w.clients(t), WitnessQuorum: 2, Prover: w.prover(), Registerer: reg, Shared: shared,
		Retry: 20 * time.Millisecond, MaxRetry: 40 * time.Millisecond, Timeout: 10 * time.Second}
	for _, e := range edit {
		e(&cfg)
	}
	wi, err := witnessing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(run(wi))
	return wi, reg
}

// run runs wi's background loop; stop ends it and returns once Run has
// (after its round has stored what it got). stop may be called again.
func run(wi *witnessing.Witnessing) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { wi.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// waitFor polls cond (the background loop's progress) for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWitnessDownDelaysOnlyItsCosignature: with two real litewitnesses
// (quorum 2) and a real OpenSSL TSA, checkpoints get both cosignatures and
// a token; with one witness down a new checkpoint gets one cosignature and
// no quorum (Signed never blocks), and the missing cosignature comes once
// the witness is back; the evidence survives a restart.
func TestWitnessDownDelaysOnlyItsCosignature(t *testing.T) {
	w := newWorld(t)
	ca := tsatest.NewCA(t, "TSA root")
	tsa := tsatest.Start(t, ca.IssueTSA(t, tsatest.TSAOptions{Name: "TSA 1"}), tsatest.ServerOptions{})
	trust, err := timestamp.NewTrust(1, timestamp.Authority{Name: "tsa1", Roots: []*x509.Certificate{ca.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := timestamp.NewClient(tsa.URL, timestamp.WithTrust(trust))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := witnessing.Config{Witnesses: w.clients(t), WitnessQuorum: 2, TSAs: []*timestamp.Client{tc}, TSAQuorum: 1,
		Prover: w.prover(), Dir: dir, Retry: 50 * time.Millisecond, MaxRetry: 200 * time.Millisecond, Timeout: 10 * time.Second}
	wi, err := witnessing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(wi)
	defer stop()

	cp1 := w.grow(t, 3)
	wi.Signed(cp1.Size, cp1.Note)
	waitFor(t, "the first checkpoint's quorum", func() bool { return wi.Best(1, cp1.Size) != nil })
	ev := wi.Best(1, cp1.Size)
	r, err := w.q.Verify([]byte(ev.Note))
	if err != nil || !r.Met {
		t.Fatalf("cosigned checkpoint: %+v, %v", r, err)
	}
	text, err := cp1.Text()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := trust.Verify(timestamp.CheckpointDigest(text), ev.Timestamps); err != nil || res.Time.IsZero() {
		t.Fatalf("timestamps of checkpoint %d: %v", cp1.Size, err)
	}

	w.ws[1].Stop()
	cp2 := w.grow(t, 2)
	wi.Signed(cp2.Size, cp2.Note) // returns at once: the witness being down is the loop's business
	waitFor(t, "the reachable witness's cosignature", func() bool {
		r, err := w.q.Verify(wi.Cosigned(cp2.Size, cp2.Note))
		return err == nil && len(r.Cosignatures) == 1
	})
	if ev := wi.Best(cp2.Size, cp2.Size); ev != nil {
		t.Fatalf("checkpoint %d reached quorum with a witness down: %v", cp2.Size, ev.Cosigners)
	}
	if got := wi.Best(1, cp2.Size); got == nil || got.Size != cp1.Size {
		t.Fatalf("Best(1): %+v; want the first checkpoint", got)
	}
	w.ws[1].Restart()
	waitFor(t, "the second cosignature once the witness is back", func() bool { return wi.Best(cp2.Size, cp2.Size) != nil })

	// The evidence is kept in the state directory.
	stop()
	again, err := witnessing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ev := again.Best(cp2.Size, cp2.Size); ev == nil || len(ev.Cosigners) != 2 || len(ev.Timestamps) != 1 {
		t.Fatalf("reloaded evidence of checkpoint %d: %+v", cp2.Size, ev)
	}
}

// TestAnotherReplicaAheadIsNotAFailure: two replicas of one log (one
// database) submit their own checkpoints to the same witnesses. When a
// witness has already cosigned a larger checkpoint (the other replica's),
// the smaller one can never be cosigned: that is counted as superseded,
// not as a failure, and not retried; the replica's next checkpoint past
// the witness's is cosigned.
func TestAnotherReplicaAheadIsNotAFailure(t *testing.T) {
	w := newWorld(t)
	a, _ := w.replica(t, nil)
	b, bReg := w.replica(t, nil)
	cp1 := w.grow(t, 3)
	cp2 := w.grow(t, 2)
	a.Signed(cp2.Size, cp2.Note)
	waitFor(t, "replica a's quorum", func() bool { return a.Best(cp2.Size, cp2.Size) != nil })

	b.Signed(cp1.Size, cp1.Note) // smaller than what the witnesses recorded
	waitFor(t, "replica b's checkpoint superseded at both witnesses", func() bool {
		return sumCounter(t, bReg, "quorate_witness_superseded_total") == 2
	})
	time.Sleep(300 * time.Millisecond) // several retry delays: nothing is retried
	if got := sumCounter(t, bReg, "quorate_witness_failures_total"); got != 0 {
		t.Errorf("quorate_witness_failures_total = %v for a checkpoint another replica's superseded, want 0", got)
	}
	if got := sumCounter(t, bReg, "quorate_witness_superseded_total"); got != 2 {
		t.Errorf("quorate_witness_superseded_total = %v after waiting, want 2 (not retried)", got)
	}

	cp3 := w.grow(t, 1)
	b.Signed(cp3.Size, cp3.Note)
	waitFor(t, "replica b's next checkpoint cosigned", func() bool { return b.Best(cp3.Size, cp3.Size) != nil })
}

// sumCounter is the sum of a counter's series in reg (0 when absent).
func sumCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestReplicasShareEvidence: replicas of one PostgreSQL database share the
// complete evidence of their checkpoints, so a replica that never got a
// quorum builds its bundle over another's checkpoint; shared evidence
// whose cosignatures do not make the quorum is not used.
func TestReplicasShareEvidence(t *testing.T) {
	w := newWorld(t)
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	// Replica a reaches the TSA; the others only check tokens with the
	// policy's trust.
	ca := tsatest.NewCA(t, "TSA root")
	tsa := tsatest.Start(t, ca.IssueTSA(t, tsatest.TSAOptions{Name: "TSA 1"}), tsatest.ServerOptions{})
	trust, err := timestamp.NewTrust(1, timestamp.Authority{Name: "tsa1", Roots: []*x509.Certificate{ca.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	withTSA := func(url string) func(*witnessing.Config) {
		return func(c *witnessing.Config) {
			tc, err := timestamp.NewClient(url, timestamp.WithTrust(trust))
			if err != nil {
				t.Fatal(err)
			}
			c.TSAs, c.TSAQuorum, c.TSATrust = []*timestamp.Client{tc}, 1, trust
		}
	}
	start := func(u, tsaURL string) *witnessing.Witnessing {
		wi, _ := w.replica(t, openShared(t, u), withTSA(tsaURL))
		return wi
	}
	const closed = "http://127.0.0.1:1"
	a, b := start(u, tsa.URL), start(u, closed)
	cp := w.grow(t, 5)
	a.Signed(cp.Size, cp.Note)
	waitFor(t, "replica a's quorums", func() bool { return a.Best(cp.Size, cp.Size) != nil })
	// Replica a stores the evidence just after it completes it.
	waitFor(t, "the evidence shared", func() bool { return b.Best(1, cp.Size) != nil })
	ev := b.Best(1, cp.Size)
	if ev == nil || ev.Size != cp.Size {
		t.Fatalf("replica b's best evidence: %+v; want replica a's checkpoint of size %d", ev, cp.Size)
	}
	if r, err := w.q.Verify([]byte(ev.Note)); err != nil || !r.Met {
		t.Fatalf("shared evidence: %+v, %v", r, err)
	}
	if got := b.Cosigned(cp.Size, cp.Note); string(got) != ev.Note {
		t.Errorf("replica b serves the checkpoint without the shared cosignatures")
	}

	// Evidence claiming cosigners its note does not carry (a row edited in
	// the database) is not used.
	small := w.grow(t, 1)
	forged, err := json.Marshal(witnessing.Evidence{Size: 2, Note: string(small.Note), Cosigners: []string{"witness.example/w1", "witness.example/w2"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(context.Background(), u, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutEvidence(context.Background(), 2, forged); err != nil {
		t.Fatal(err)
	}
	c := start(u, closed)
	if ev := c.Best(1, 2); ev != nil {
		t.Fatalf("forged shared evidence used: %+v", ev)
	}

	// Real cosignatures with tokens that are not the TSA's (or a size the
	// note does not have) are not used either.
	for name, edit := range map[string]func(*witnessing.Evidence){
		"tokens not the TSA's": func(e *witnessing.Evidence) { e.Timestamps = [][]byte{[]byte("not a token")} },
		"size not the note's":  func(e *witnessing.Evidence) { e.Size-- },
	} {
		bad := *ev
		edit(&bad)
		data, err := json.Marshal(bad)
		if err != nil {
			t.Fatal(err)
		}
		other := pgtest.FreshSchema(t, pgtest.ServerURL(t))
		ost, err := pgstore.Open(context.Background(), other, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ost.Close()
		if err := ost.PutEvidence(context.Background(), bad.Size, data); err != nil {
			t.Fatal(err)
		}
		if got := start(other, closed).Best(1, cp.Size); got != nil {
			t.Errorf("%s: shared evidence used: %+v", name, got)
		}
	}
}

// serve shares evidence through a PostgreSQL store (cmd/quorate's
// openWitnessing asserts the store to SharedEvidence).
var _ witnessing.SharedEvidence = (*pgstore.Store)(nil)

// TestBestPrefersAnotherReplicasSmallerCheckpoint: a replica whose own
// complete evidence is for a larger checkpoint builds its bundles over
// another replica's smaller one when that covers the entries: the bound is
// tighter.
func TestBestPrefersAnotherReplicasSmallerCheckpoint(t *testing.T) {
	w := newWorld(t)
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	a, _ := w.replica(t, openShared(t, u))
	b, _ := w.replica(t, openShared(t, u))
	cp1 := w.grow(t, 3)
	a.Signed(cp1.Size, cp1.Note)
	waitFor(t, "replica a's quorum", func() bool { return a.Best(cp1.Size, cp1.Size) != nil })
	cp2 := w.grow(t, 2)
	b.Signed(cp2.Size, cp2.Note)
	waitFor(t, "replica b's own quorum", func() bool { return b.Best(cp2.Size, cp2.Size) != nil })
	waitFor(t, "replica b choosing replica a's smaller checkpoint", func() bool {
		ev := b.Best(1, cp2.Size)
		return ev != nil && ev.Size == cp1.Size
	})
	if ev := b.Best(cp1.Size+1, cp2.Size); ev == nil || ev.Size != cp2.Size {
		t.Fatalf("entries past replica a's checkpoint: %+v; want replica b's own checkpoint of size %d", ev, cp2.Size)
	}
}

// openShared opens the PostgreSQL store of schema u as a replica's shared
// evidence, until the test ends.
func openShared(t *testing.T, u string) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(context.Background(), u, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
