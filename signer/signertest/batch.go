package signertest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
)

// TestBatchedSignatures checks what a store that group-commits signatures
// (deciding them in memory under row locks and sequencing their log
// appends at the end of a batch) must keep, with many signatures racing
// into the same batches: every identity is recorded exactly once, a
// signature whose finish function fails is neither stored nor logged,
// exactly one composite is emitted per request, the requests returned carry
// the log index of every signature, and the log is gap-free, matches the
// rows and audits. open returns one or more stores over the same fresh
// database (replicas), each keeping its log with log.
func TestBatchedSignatures(t *testing.T, open func(t *testing.T, log *ledger.Log) []signer.LedgerStore) {
	t.Helper()
	stores, l, logKey := openLogged(t, open)
	ctx := t.Context()
	const requests, signers = 6, 5
	for r := range requests {
		mustCreate(t, stores[r%len(stores)], loggedRequest(fmt.Sprintf("batched-%d", r), at(r)))
	}
	errFinish := errors.New("finish refuses this signer")
	refuse := func(r *signer.Request) (signer.Finish, error) {
		if r.Signatures[len(r.Signatures)-1].Identity == loggedPartial("refused", at(0)).Identity {
			return signer.Finish{}, errFinish
		}
		return finishAt(signers + 1)(r)
	}
	type outcome struct {
		req *signer.Request
		err error
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes = map[string][]outcome{} // by request ID
	)
	// Each signer signs each request twice, through different replicas,
	// and the refused signer once; all at the same time.
	for r := range requests {
		id := fmt.Sprintf("batched-%d", r)
		for k := range signers + 1 {
			who, tries := fmt.Sprintf("signer-%d", k), 2
			if k == signers {
				who, tries = "refused", 1
			}
			for try := range tries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := stores[(r+k+try)%len(stores)]
					got, err := s.AddSignature(ctx, id, loggedPartial(who, at(100+k)), refuse)
					mu.Lock()
					outcomes[id] = append(outcomes[id], outcome{got, err})
					mu.Unlock()
				}()
			}
		}
	}
	// Checkpoints stored meanwhile share batches with the signatures: such a
	// batch takes the log lock from its start.
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				cp, err := l.Sign(ctx, s.Ledger())
				if err == nil {
					err = s.PutCheckpoint(ctx, cp.Size, cp.Note)
				}
				if err != nil {
					t.Errorf("checkpoint through store %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	es := logEntries(t, stores[0])
	if want := requests * (1 + 1 + signers + 1); len(es) != want {
		t.Fatalf("log has %d entries, want %d (opened, requester, %d signers, emitted per request)", len(es), want, signers)
	}
	for r := range requests {
		id := fmt.Sprintf("batched-%d", r)
		accepted, completed := 0, 0
		for _, o := range outcomes[id] {
			switch {
			case o.err == nil:
				accepted++
				if o.req.State == signer.Complete {
					completed++
				}
				for _, p := range o.req.Signatures {
					if p.LogIndex < 0 {
						t.Errorf("request %s: returned signature by %s has no log index", id, p.KeyID)
					}
				}
			case errors.Is(o.err, errFinish):
			case errors.Is(o.err, signer.ErrDuplicate), errors.Is(o.err, signer.ErrNotPending):
			default:
				t.Errorf("request %s: unexpected error %v", id, o.err)
			}
		}
		if accepted != signers || completed != 1 {
			t.Errorf("request %s: %d signatures accepted (want %d), %d completed it (want 1)", id, accepted, signers, completed)
		}
		req := mustGet(t, stores[0], id)
		if req.State != signer.Complete || len(req.Signatures) != 1+signers {
			t.Fatalf("request %s is %s with %d signatures, want %s with %d", id, req.State, len(req.Signatures), signer.Complete, 1+signers)
		}
		for _, p := range req.Signatures {
			if p.Identity == loggedPartial("refused", at(0)).Identity {
				t.Errorf("request %s: the refused signature was stored", id)
			}
			wantEntry(t, es, p.LogIndex, ledger.SignatureAccepted, req.ID, p.KeyID)
		}
		wantEntry(t, es, req.EmittedIndex, ledger.AttestationEmitted, req.ID, "")
		for _, o := range outcomes[id] {
			if o.err != nil {
				continue
			}
			for _, p := range o.req.Signatures {
				if stored := req.SignedBy(p.Identity); stored == nil || stored.LogIndex != p.LogIndex {
					t.Errorf("request %s: returned log index %d of %s is not the stored one", id, p.LogIndex, p.KeyID)
				}
			}
		}
	}
	if len(stores) > 1 {
		testReplicaChangesSeen(t, stores[0], stores[1])
	}
	// One more entry, so the audited checkpoint is not one stored above.
	mustCreate(t, stores[0], loggedRequest("last", at(300)))
	auditLog(ctx, t, stores[0], l, logKey)
}

// openLogged opens the stores of a shared batch test with a log of their
// own, closed when the test ends, and returns them with the log and its key.
func openLogged(t *testing.T, open func(t *testing.T, log *ledger.Log) []signer.LedgerStore) ([]signer.LedgerStore, *ledger.Log, *keys.PublicKey) {
	t.Helper()
	logSigner := newFileSigner(t, hsm.ECDSAP256, "log key")
	l, err := ledger.New(ledger.Config{Origin: LogOrigin, Signer: logSigner, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	stores := open(t, l)
	for _, s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	return stores, l, logSigner.Public()
}

// testReplicaChangesSeen checks that a replica sees what another replica
// stored since it last wrote the same request, whatever it remembers of it.
func testReplicaChangesSeen(t *testing.T, a, b signer.LedgerStore) {
	ctx := t.Context()
	mustCreate(t, a, loggedRequest("seen", at(0)))
	sign := func(s signer.LedgerStore, who string) (*signer.Request, error) {
		return s.AddSignature(ctx, "seen", loggedPartial(who, at(200)), finishAt(4))
	}
	if _, err := sign(a, "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := sign(b, "second"); err != nil {
		t.Fatal(err)
	}
	got, err := sign(a, "third")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != signer.Complete || len(got.Signatures) != 4 {
		t.Fatalf("after a signature through each replica and a third: %s with %d signatures, want %s with 4", got.State, len(got.Signatures), signer.Complete)
	}
	if _, err := sign(b, "fourth"); !errors.Is(err, signer.ErrNotPending) {
		t.Fatalf("signing through the other replica after completion: %v, want %v", err, signer.ErrNotPending)
	}
}

// TestBatchObserver checks a group-committing store's batch observer: after
// a request and concurrent signatures on it, all logged, the committed
// batches it saw hold every write, each held the log lock for a time
// greater than zero and no longer than the batch, and none failed. open
// returns a fresh store keeping its log with log and calling observe after
// each batch; the test closes it (Close waits for the writer, so every
// batch has been observed).
func TestBatchObserver(t *testing.T, open func(t *testing.T, log *ledger.Log, observe func(signer.BatchStats)) signer.LedgerStore) {
	t.Helper()
	l := newLog(t)
	var (
		mu    sync.Mutex
		stats []signer.BatchStats
	)
	s := open(t, l, func(st signer.BatchStats) {
		mu.Lock()
		stats = append(stats, st)
		mu.Unlock()
	})
	const signers = 8
	mustCreate(t, s, loggedRequest("observed", at(0)))
	var wg sync.WaitGroup
	for k := range signers {
		wg.Go(func() {
			if _, err := s.AddSignature(t.Context(), "observed", loggedPartial(fmt.Sprintf("signer-%d", k), at(1+k)), neverFinish); err != nil {
				t.Errorf("AddSignature(signer-%d): %v", k, err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	writes := 0
	for i, st := range stats {
		if !st.Committed {
			t.Errorf("batch %d failed: %+v", i, st)
			continue
		}
		writes += st.Writes
		if st.Writes < 1 || st.LogLockHeld <= 0 || st.LogLockHeld > st.Duration {
			t.Errorf("batch %d: %+v, want at least one write and 0 < LogLockHeld <= Duration", i, st)
		}
	}
	if want := 1 + signers; writes != want {
		t.Errorf("committed batches hold %d writes (%+v), want %d", writes, stats, want)
	}
}

// SignInBursts signs, through a store keeping a log, 64 requests of 16
// signatures (each completed by its last) in bursts of 1, 2, 3, ... up to
// 64 concurrent signatures, so the store's batches take many sizes, with
// completions among them. Then it calls check on the store, before closing
// it.
func SignInBursts(t *testing.T, open func(t *testing.T, log *ledger.Log) signer.LedgerStore, check func(t *testing.T, s signer.LedgerStore)) {
	t.Helper()
	l := newLog(t)
	s := open(t, l)
	defer s.Close()
	const requests, perRequest = 64, 15 // added to the requester's
	for r := range requests {
		mustCreate(t, s, loggedRequest(fmt.Sprintf("burst-%d", r), at(r)))
	}
	next, completed := 0, 0
	for size := 1; next < requests*perRequest; size = size%64 + 1 {
		var (
			wg sync.WaitGroup
			mu sync.Mutex
		)
		for range min(size, requests*perRequest-next) {
			id, who := fmt.Sprintf("burst-%d", next%requests), fmt.Sprintf("signer-%d", next/requests)
			next++
			wg.Go(func() {
				r, err := s.AddSignature(t.Context(), id, loggedPartial(who, at(100)), finishAt(perRequest+1))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("%s signing %s: %v", who, id, err)
				case r.State == signer.Complete:
					completed++
				}
			})
		}
		wg.Wait()
	}
	if completed != requests {
		t.Fatalf("%d requests completed, want %d", completed, requests)
	}
	check(t, s)
}

// TestOpenedWhileSigning checks a store whose batches open requests among
// signatures (as a coordinator in steady state sees them): each request
// is opened exactly once even when opened twice at the same time (the
// other attempt fails with [signer.ErrExists], and only its own write), a
// request opened complete refuses signatures, signatures racing a
// request's opening count once it is open, every request, signature and
// composite is logged once with the index its row and the returned
// requests carry, and the log audits. open returns one or more stores over
// the same fresh database (replicas), each keeping its log with log.
func TestOpenedWhileSigning(t *testing.T, open func(t *testing.T, log *ledger.Log) []signer.LedgerStore) {
	t.Helper()
	stores, l, logKey := openLogged(t, open)
	ctx := t.Context()
	const requests, complete, signers = 10, 2, 4
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		opens    = map[string][]error{}
		returned = map[string][]*signer.Request{}
	)
	store := func(i int) signer.LedgerStore { return stores[i%len(stores)] }
	for r := range requests + complete {
		id := fmt.Sprintf("opened-%d", r)
		// Opened twice at once, through different replicas where there
		// are several.
		for try := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := loggedRequest(id, at(r))
				if r >= requests {
					req.State, req.Envelope = signer.Complete, envelopeFor(req)
				}
				err := store(r+try).CreateRequest(ctx, req, signer.CreatedEvents(req))
				mu.Lock()
				opens[id] = append(opens[id], err)
				mu.Unlock()
			}()
		}
		if r >= requests {
			continue
		}
		// Its signers at the same time, each until the request is open.
		for k := range signers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := store(r+k).AddSignature(ctx, id, loggedPartial(fmt.Sprintf("signer-%d", k), at(100+k)), finishAt(1+signers))
					if errors.Is(err, signer.ErrNotFound) {
						time.Sleep(time.Millisecond)
						continue
					}
					if err != nil {
						t.Errorf("request %s: signer %d: %v", id, k, err)
						return
					}
					mu.Lock()
					returned[id] = append(returned[id], got)
					mu.Unlock()
					return
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	es := logEntries(t, stores[0])
	if want := requests*(1+1+signers+1) + complete*(1+1+1); len(es) != want {
		t.Fatalf("log has %d entries, want %d", len(es), want)
	}
	for r := range requests + complete {
		id := fmt.Sprintf("opened-%d", r)
		var ok, exists int
		for _, err := range opens[id] {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, signer.ErrExists):
				exists++
			default:
				t.Errorf("opening %s: unexpected error %v", id, err)
			}
		}
		if ok != 1 || exists != 1 {
			t.Errorf("request %s opened %d times and refused as existing %d times; want once each", id, ok, exists)
		}
		req := mustGet(t, stores[0], id)
		wantEntry(t, es, req.LogIndex, ledger.RequestOpened, id, "")
		wantEntry(t, es, req.EmittedIndex, ledger.AttestationEmitted, id, "")
		want := 1 + signers
		if r >= requests {
			want = 1
			if _, err := store(r).AddSignature(ctx, id, loggedPartial("late", at(200)), finishAt(1)); !errors.Is(err, signer.ErrNotPending) {
				t.Errorf("signing %s, opened complete: %v, want ErrNotPending", id, err)
			}
		}
		if req.State != signer.Complete || len(req.Signatures) != want {
			t.Fatalf("request %s is %s with %d signatures, want %s with %d", id, req.State, len(req.Signatures), signer.Complete, want)
		}
		for _, p := range req.Signatures {
			wantEntry(t, es, p.LogIndex, ledger.SignatureAccepted, id, p.KeyID)
		}
		completed := 0
		for _, got := range returned[id] {
			if got.LogIndex != req.LogIndex {
				t.Errorf("request %s: returned with log index %d, stored %d", id, got.LogIndex, req.LogIndex)
			}
			if got.State == signer.Complete {
				completed++
			}
			for _, p := range got.Signatures {
				if stored := req.SignedBy(p.Identity); stored == nil || stored.LogIndex != p.LogIndex {
					t.Errorf("request %s: returned log index %d of %s is not the stored one", id, p.LogIndex, p.KeyID)
				}
			}
		}
		if r < requests && completed != 1 {
			t.Errorf("request %s: %d signatures completed it, want 1", id, completed)
		}
	}
	auditLog(ctx, t, stores[0], l, logKey)
}
