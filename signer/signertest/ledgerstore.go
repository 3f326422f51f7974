package signertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
)

// LogOrigin is the origin of the logs TestLedgerStore creates.
const LogOrigin = "quorate.test/log"

// TestLedgerStore checks a [signer.LedgerStore] keeps the transparency log as the
// contract says: every change appends its events in its own transaction,
// with the entries' indexes recorded on the rows; a refused change appends
// nothing; concurrent writers leave a gap-free log whose every entry matches
// its row; and the whole log audits against a signed checkpoint. open must
// return a fresh, empty store that keeps its log with log.
func TestLedgerStore(t *testing.T, open func(t *testing.T, log *ledger.Log) signer.LedgerStore) {
	t.Helper()
	logSigner := newFileSigner(t, hsm.ECDSAP256, "log key")
	newLog := func(t *testing.T) *ledger.Log {
		l, err := ledger.New(ledger.Config{Origin: LogOrigin, Signer: logSigner, Clock: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	t.Run("ChangesAreLogged", func(t *testing.T) { testLogged(t, open(t, newLog(t))) })
	t.Run("RefusedChangesLogNothing", func(t *testing.T) { testRefusedNotLogged(t, open(t, newLog(t))) })
	t.Run("LogsExactlyTheEventsHanded", func(t *testing.T) { testLogsHanded(t, open(t, newLog(t))) })
	t.Run("ConcurrentWritersGapFree", func(t *testing.T) {
		l := newLog(t)
		testLogConcurrent(t, open(t, l), l, logSigner.Public())
	})
	t.Run("LogRemembersPolicyVersions", func(t *testing.T) { testLogRemembersTrust(t, open(t, newLog(t))) })
}

// newLog is a transparency log with an ECDSA P-256 key in memory.
func newLog(tb testing.TB) *ledger.Log {
	tb.Helper()
	l, err := ledger.New(ledger.Config{Origin: LogOrigin, Signer: newFileSigner(tb, hsm.ECDSAP256, "log key"), Clock: time.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func hexID(who string) string { return fmt.Sprintf("%064x", []byte(who)) }

func loggedRequest(id string, created time.Time) *signer.Request {
	r := newRequest(id, created)
	r.Requester = hexID("requester")
	r.Signatures[0].KeyID = hexID("requester")
	return r
}

func loggedPartial(who string, at time.Time) signer.Partial {
	p := partial(who, at)
	p.KeyID = hexID(who)
	return p
}

func logEntries(t *testing.T, s signer.LedgerStore) []*ledger.Entry {
	t.Helper()
	ctx := context.Background()
	n, err := s.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return nil
	}
	es, _, err := ledger.ReadEntries(ctx, s.Ledger(), 0, n)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func wantEntry(t *testing.T, es []*ledger.Entry, index int64, typ ledger.EventType, requestID, keyID string) {
	t.Helper()
	if index < 0 || index >= int64(len(es)) {
		t.Fatalf("log index %d outside the log of %d entries", index, len(es))
	}
	e := es[index]
	if e.Type != typ || e.RequestID != requestID || (keyID != "" && e.KeyID != keyID) {
		t.Fatalf("entry %d = %s %s key %s; want %s %s key %s", index, e.Type, e.RequestID, e.KeyID, typ, requestID, keyID)
	}
}

func testLogged(t *testing.T, s signer.LedgerStore) {
	ctx := context.Background()
	defer s.Close()
	mustCreate(t, s, loggedRequest("logged-1", at(0)))
	if _, err := s.AddSignature(ctx, "logged-1", loggedPartial("alice", at(1)), neverFinish); err != nil {
		t.Fatal(err)
	}
	done, err := s.AddSignature(ctx, "logged-1", loggedPartial("bob", at(2)), finishAt(3))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, loggedRequest("logged-2", at(3)))
	if _, err := s.SetState(ctx, "logged-2", signer.Cancelled, "wrong build", at(4), signer.LogState); err != nil {
		t.Fatal(err)
	}
	es := logEntries(t, s)
	if len(es) != 8 {
		t.Fatalf("log has %d entries, want 8 (open, sign, sign, sign, emit, open, sign, cancel)", len(es))
	}
	r := mustGet(t, s, "logged-1")
	wantEntry(t, es, r.LogIndex, ledger.RequestOpened, "logged-1", hexID("requester"))
	for _, p := range r.Signatures {
		wantEntry(t, es, p.LogIndex, ledger.SignatureAccepted, "logged-1", p.KeyID)
	}
	wantEntry(t, es, r.EmittedIndex, ledger.AttestationEmitted, "logged-1", "")
	if done.EmittedIndex != r.EmittedIndex || done.Signatures[2].LogIndex != r.Signatures[2].LogIndex {
		t.Fatalf("AddSignature returned indexes %d/%d, stored %d/%d", done.EmittedIndex, done.Signatures[2].LogIndex, r.EmittedIndex, r.Signatures[2].LogIndex)
	}
	if got, want := es[r.EmittedIndex].EnvelopeSHA256, signer.EmittedEvent(r).EnvelopeSHA256; got != want {
		t.Fatalf("emitted entry names envelope %s, stored envelope hashes to %s", got, want)
	}
	wantEntry(t, es, 7, ledger.RequestCancelled, "logged-2", "")
	if c := mustGet(t, s, "logged-2"); c.LogIndex != 5 || c.Signatures[0].LogIndex != 6 {
		t.Fatalf("request logged-2 has log indexes %d/%d, want 5/6", c.LogIndex, c.Signatures[0].LogIndex)
	}
	if _, _, err := s.LatestCheckpoint(ctx); !errors.Is(err, signer.ErrNotFound) {
		t.Fatalf("LatestCheckpoint before any: %v, want ErrNotFound", err)
	}
}

func testRefusedNotLogged(t *testing.T, s signer.LedgerStore) {
	ctx := context.Background()
	defer s.Close()
	mustCreate(t, s, loggedRequest("refused-1", at(0)))
	before := len(logEntries(t, s))
	_, err := s.AddSignature(ctx, "refused-1", loggedPartial("requester", at(1)), neverFinish)
	wantErr(t, "duplicate signature", err, signer.ErrDuplicate)
	// A finish that fails after deciding (events and composite) leaves
	// neither the signature nor any event.
	_, err = s.AddSignature(ctx, "refused-1", loggedPartial("carol", at(1)), func(r *signer.Request) (signer.Finish, error) {
		return signer.Finished(r, envelopeFor(r)), errors.New("no")
	})
	if err == nil {
		t.Fatal("a failing finish function was accepted")
	}
	if r := mustGet(t, s, "refused-1"); len(r.Signatures) != 1 || r.State != signer.Pending {
		t.Fatalf("a failing finish left %d signatures, state %s", len(r.Signatures), r.State)
	}
	_, err = s.AddSignature(ctx, "refused-1", loggedPartial("carol", at(1)), func(r *signer.Request) (signer.Finish, error) {
		return signer.Finish{Envelope: envelopeFor(r), Events: signer.Finished(r, nil).Events}, nil
	})
	if err == nil {
		t.Fatal("a finish completing the request without its attestation.emitted event was accepted")
	}
	_, err = s.SetState(ctx, "refused-1", signer.Cancelled, "no", at(1), func(*signer.Request) ([]ledger.Event, error) { return nil, errors.New("no") })
	if err == nil {
		t.Fatal("a failing log function was accepted")
	}
	_, err = s.AddSignature(ctx, "no-such-request", loggedPartial("carol", at(1)), neverFinish)
	wantErr(t, "unknown request", err, signer.ErrNotFound)
	if err := create(ctx, s, loggedRequest("refused-1", at(2))); !errors.Is(err, signer.ErrExists) {
		t.Fatalf("duplicate request ID: %v", err)
	}
	if after := len(logEntries(t, s)); after != before {
		t.Fatalf("refused changes appended %d log entries", after-before)
	}
}

// handed marks an event so that its entry can be told from one the store
// would have built itself.
func handed(ev ledger.Event, mark string) ledger.Event {
	d := map[string]string{"mark": mark}
	for k, v := range ev.Detail {
		d[k] = v
	}
	ev.Detail = d
	return ev
}

// testLogsHanded checks the store appends the events the coordinator hands
// it, exactly and in order, in the transaction of the change: a store
// never builds (or rewrites) an event of its own.
func testLogsHanded(t *testing.T, s signer.LedgerStore) {
	ctx := context.Background()
	defer s.Close()
	var want []ledger.Event
	r := loggedRequest("handed-1", at(0))
	opened := signer.CreatedEvents(r)
	for i := range opened {
		opened[i] = handed(opened[i], fmt.Sprintf("create-%d", i))
	}
	if err := s.CreateRequest(ctx, r, opened); err != nil {
		t.Fatal(err)
	}
	want = append(want, opened...)
	var fin signer.Finish
	done, err := s.AddSignature(ctx, "handed-1", loggedPartial("alice", at(1)), func(r *signer.Request) (signer.Finish, error) {
		fin = signer.Finished(r, envelopeFor(r))
		fin.Events[0] = handed(fin.Events[0], "signature")
		// An emitted event naming another digest than the envelope's:
		// the store records what it is given, it does not recompute.
		fin.Events[1] = handed(fin.Events[1], "emitted")
		fin.Events[1].EnvelopeSHA256 = fmt.Sprintf("%064x", 99)
		return fin, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, fin.Events...)
	r2 := loggedRequest("handed-2", at(2))
	mustCreate(t, s, r2)
	want = append(want, signer.CreatedEvents(r2)...)
	var state []ledger.Event
	if _, err := s.SetState(ctx, "handed-2", signer.Expired, "expired", at(3), func(r *signer.Request) ([]ledger.Event, error) {
		if r.State != signer.Expired || r.StateReason != "expired" {
			return nil, fmt.Errorf("log function sees state %s (%q), want the new state", r.State, r.StateReason)
		}
		state = []ledger.Event{handed(signer.StateEvent(r, r.State, r.StateReason), "state-1"), handed(signer.StateEvent(r, r.State, r.StateReason), "state-2")}
		return state, nil
	}); err != nil {
		t.Fatal(err)
	}
	want = append(want, state...)
	es := logEntries(t, s)
	if len(es) != len(want) {
		t.Fatalf("log has %d entries, want the %d handed", len(es), len(want))
	}
	for i, e := range es {
		if !reflect.DeepEqual(e.Event, want[i]) {
			t.Errorf("entry %d = %+v, want the event handed %+v", i, e.Event, want[i])
		}
	}
	got := mustGet(t, s, "handed-1")
	if got.LogIndex != 0 || got.Signatures[0].LogIndex != 1 || got.Signatures[1].LogIndex != 2 || got.EmittedIndex != 3 || done.EmittedIndex != 3 {
		t.Errorf("indexes recorded: opened %d, signatures %d/%d, emitted %d (returned %d); want 0, 1/2, 3", got.LogIndex, got.Signatures[0].LogIndex, got.Signatures[1].LogIndex, got.EmittedIndex, done.EmittedIndex)
	}
}

func testLogConcurrent(t *testing.T, s signer.LedgerStore, l *ledger.Log, logKey *keys.PublicKey) {
	ctx := context.Background()
	defer s.Close()
	const requests, signers = 8, 6
	for r := 0; r < requests; r++ {
		mustCreate(t, s, loggedRequest(fmt.Sprintf("conc-%d", r), at(r)))
	}
	var wg sync.WaitGroup
	for k := 0; k < signers; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for r := 0; r < requests; r++ {
				if _, err := s.AddSignature(ctx, fmt.Sprintf("conc-%d", r), loggedPartial(fmt.Sprintf("signer-%d", k), at(100+k)), finishAt(signers+1)); err != nil {
					t.Errorf("request %d signer %d: %v", r, k, err)
				}
			}
		}(k)
	}
	wg.Wait()
	es := logEntries(t, s)
	if want := requests * (2 + signers + 1); len(es) != want {
		t.Fatalf("log has %d entries, want %d", len(es), want)
	}
	for i, e := range es {
		if e.Index != int64(i) {
			t.Fatalf("entry at position %d says index %d", i, e.Index)
		}
	}
	for r := 0; r < requests; r++ {
		req := mustGet(t, s, fmt.Sprintf("conc-%d", r))
		if req.State != signer.Complete {
			t.Fatalf("request %s is %s", req.ID, req.State)
		}
		for _, p := range req.Signatures {
			wantEntry(t, es, p.LogIndex, ledger.SignatureAccepted, req.ID, p.KeyID)
		}
		wantEntry(t, es, req.EmittedIndex, ledger.AttestationEmitted, req.ID, "")
	}
	auditLog(ctx, t, s, l, logKey)
}

// auditLog signs and stores a checkpoint of s's log and audits the whole
// log against it.
func auditLog(ctx context.Context, t *testing.T, s signer.LedgerStore, l *ledger.Log, logKey *keys.PublicKey) {
	t.Helper()
	cp, err := l.Sign(ctx, s.Ledger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCheckpoint(ctx, cp.Size, cp.Note); err != nil {
		t.Fatal(err)
	}
	size, note, err := s.LatestCheckpoint(ctx)
	if err != nil || size != cp.Size || string(note) != string(cp.Note) {
		t.Fatalf("LatestCheckpoint = %d, %v; want %d", size, err, cp.Size)
	}
	raw, err := s.Ledger().ReadEntries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Audit(ctx, ledger.AuditConfig{Origin: LogOrigin, LogKey: logKey}, raw, note); err != nil {
		t.Fatalf("the store's log does not audit: %v", err)
	}
}
