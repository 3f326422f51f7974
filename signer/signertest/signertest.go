// Package signertest is the conformance suite every [signer.Store] must
// pass: run [TestStore] from the implementation's tests.
//
//	func TestStore(t *testing.T) {
//		signertest.TestStore(t, func(t *testing.T, name string) signer.Store {
//			s, err := mystore.Open(t.Context(), filepath.Join(dir, name))
//			...
//			return s
//		})
//	}
//
// # What it checks
//
// Round trips of every field, the errors of the contract
// ([signer.ErrExists], [signer.ErrNotFound], [signer.ErrDuplicate],
// [signer.ErrNotPending]), that a failed AddSignature stores nothing, that a
// composite is emitted exactly once when final signatures race, that the
// same key posted many times concurrently is stored once, listing filters
// and paging (also as summaries without payloads), counting by state, that everything acknowledged survives Close and reopening,
// that a cancelled context yields an error and no change, and that ledger
// events of another shape than the change's (see [signer.Finish]) are
// refused with nothing stored. [TestLedgerStore] checks a store logs
// exactly the events it is handed, in order, in the change's transaction;
// [TestChangeStore] that a publication's supersession ends exactly the
// pending requests it names, or nothing.
//
// Times are compared with [time.Time.Equal] at nanosecond precision: a
// store must keep the times it is given exactly.
package signertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
)

// TestStore runs the conformance suite. open returns the store called name:
// the same name after that store's Close reopens the same durable store, a
// new name gives a fresh, empty one. TestStore closes every store it opens
// (open may also register a t.Cleanup; Close must then tolerate being
// called twice, or the cleanup must not call it).
func TestStore(t *testing.T, open func(t *testing.T, name string) signer.Store) {
	t.Helper()
	h := &harness{open: open}
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"CreateGetRoundTrip", testRoundTrip},
		{"CreateMinimal", testCreateMinimal},
		{"CreateDuplicateID", testCreateDuplicateID},
		{"CreateInvalid", testCreateInvalid},
		{"GetUnknown", testGetUnknown},
		{"AddSignatureAppends", testAddSignatureAppends},
		{"AddSignatureUnknown", testAddSignatureUnknown},
		{"DuplicateIdentity", testDuplicateIdentity},
		{"DuplicateIdentityConcurrent", testDuplicateIdentityConcurrent},
		{"FinishErrorStoresNothing", testFinishError},
		{"FinishPanicStoresNothing", testFinishPanic},
		{"FinishSeesStoredRequest", testFinishSees},
		{"FinishCompletes", testFinishCompletes},
		{"GetRequestRow", testGetRequestRow},
		{"EventsOfAnotherShapeStoreNothing", testEventShapes},
		{"RacingFinalSignatures", testRacingFinal},
		{"ConcurrentRequests", testConcurrentRequests},
		{"SetState", testSetState},
		{"SetStateInvalid", testSetStateInvalid},
		{"ListByState", testListByState},
		{"ListExpiresBefore", testListExpiresBefore},
		{"ListPaging", testListPaging},
		{"ListSummary", testListSummary},
		{"CountByState", testCountByState},
		{"PendingRequests", testPendingRequests},
		{"Durability", testDurability},
		{"CancelledContext", testCancelledContext},
		{"UseAfterClose", testUseAfterClose},
		{"TrustedVersions", testTrustedVersions},
		{"DatabaseRemembersTrust", testDatabaseRemembersTrust},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

type harness struct {
	open func(t *testing.T, name string) signer.Store
}

// fresh opens a new, empty store closed at the end of the test.
func (h *harness) fresh(t *testing.T) signer.Store {
	t.Helper()
	return h.openClosing(t, "fresh")
}

func (h *harness) openClosing(t *testing.T, name string) signer.Store {
	t.Helper()
	s := h.open(t, t.Name()+"/"+name)
	if s == nil {
		t.Fatalf("open(%q) returned nil", name)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { s.Close() }) })
	return closeOnce{Store: s, once: &once}
}

// closeOnce lets a test close a store early without the cleanup closing it
// again.
type closeOnce struct {
	signer.Store
	once *sync.Once
}

func (c closeOnce) Close() error {
	err := errors.New("already closed by the test")
	c.once.Do(func() { err = c.Store.Close() })
	return err
}

// base is an arbitrary instant with nanoseconds, in a non-UTC zone, so
// stores that lose precision or mishandle zones fail.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("X", 5*3600+1800))

func at(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

func newRequest(id string, created time.Time) *signer.Request {
	return &signer.Request{
		ID:            id,
		Gate:          "release",
		PolicyVersion: 7,
		PolicyDigest:  "sha256:" + fmt.Sprintf("%064x", 42),
		PayloadType:   "application/vnd.in-toto+json",
		Payload:       []byte("{\"_type\":\"https://in-toto.io/Statement/v1\"}\x00\xff binary-safe"),
		Subjects: []attest.Subject{
			{Name: "quorate_linux_amd64.tar.gz", Digest: map[string]string{"sha256": fmt.Sprintf("%064x", 1), "sha512": "ab"}},
			{Name: "quorate_darwin_arm64.tar.gz", Digest: map[string]string{"sha256": fmt.Sprintf("%064x", 2)}},
		},
		Requester:   "key-requester",
		Created:     created,
		Expires:     created.Add(72 * time.Hour),
		State:       signer.Pending,
		StateReason: "",
		Updated:     created,
		Signatures:  []signer.Partial{partial("requester", created)},
	}
}

func partial(who string, received time.Time) signer.Partial {
	return signer.Partial{
		KeyID:    "key-" + who,
		Identity: fmt.Sprintf("%064x", []byte(who)),
		Role:     "maintainer",
		Sig:      []byte("sig\x00\x01 by " + who),
		Received: received,
	}
}

// create stores r with the events that record its opening.
func create(ctx context.Context, s signer.Store, r *signer.Request) error {
	return s.CreateRequest(ctx, r, signer.CreatedEvents(r))
}

// neverFinish leaves the request pending, logging the signature.
func neverFinish(r *signer.Request) (signer.Finish, error) { return signer.Finished(r, nil), nil }

// finishAt completes a request once it has n signatures.
func finishAt(n int) signer.FinishFunc {
	return func(r *signer.Request) (signer.Finish, error) {
		if len(r.Signatures) < n {
			return signer.Finished(r, nil), nil
		}
		return signer.Finished(r, envelopeFor(r)), nil
	}
}

func envelopeFor(r *signer.Request) []byte {
	return []byte(fmt.Sprintf(`{"payloadType":"x","signatures":%d,"id":%q}`, len(r.Signatures), r.ID))
}

func mustCreate(t *testing.T, s signer.Store, r *signer.Request) {
	t.Helper()
	if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
		t.Fatalf("CreateRequest(%q): %v", r.ID, err)
	}
}

func mustGet(t *testing.T, s signer.Store, id string) *signer.Request {
	t.Helper()
	r, err := s.GetRequest(t.Context(), id)
	if err != nil {
		t.Fatalf("GetRequest(%q): %v", id, err)
	}
	return r
}

// checkEqual fails unless got and want hold the same request.
func checkEqual(t *testing.T, what string, got, want *signer.Request) {
	t.Helper()
	if diff := diffRequest(got, want); diff != "" {
		t.Errorf("%s: %s", what, diff)
	}
}

func diffRequest(got, want *signer.Request) string {
	if got == nil || want == nil {
		if got != want {
			return fmt.Sprintf("got %v, want %v", got, want)
		}
		return ""
	}
	var d []string
	f := func(field string, g, w any) {
		d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w))
	}
	if got.ID != want.ID {
		f("ID", got.ID, want.ID)
	}
	if got.Gate != want.Gate {
		f("Gate", got.Gate, want.Gate)
	}
	if got.PolicyVersion != want.PolicyVersion {
		f("PolicyVersion", got.PolicyVersion, want.PolicyVersion)
	}
	if got.PolicyDigest != want.PolicyDigest {
		f("PolicyDigest", got.PolicyDigest, want.PolicyDigest)
	}
	if got.PayloadType != want.PayloadType {
		f("PayloadType", got.PayloadType, want.PayloadType)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		f("Payload", got.Payload, want.Payload)
	}
	if fmt.Sprint(got.Subjects) != fmt.Sprint(want.Subjects) && !(len(got.Subjects) == 0 && len(want.Subjects) == 0) {
		f("Subjects", got.Subjects, want.Subjects)
	}
	if got.Requester != want.Requester {
		f("Requester", got.Requester, want.Requester)
	}
	for _, tf := range []struct {
		name      string
		got, want time.Time
	}{{"Created", got.Created, want.Created}, {"Expires", got.Expires, want.Expires}, {"Updated", got.Updated, want.Updated}} {
		if !tf.got.Equal(tf.want) {
			f(tf.name, tf.got, tf.want)
		}
	}
	if got.State != want.State {
		f("State", got.State, want.State)
	}
	if got.StateReason != want.StateReason {
		f("StateReason", got.StateReason, want.StateReason)
	}
	if !bytes.Equal(got.Envelope, want.Envelope) {
		f("Envelope", string(got.Envelope), string(want.Envelope))
	}
	if len(got.Signatures) != len(want.Signatures) {
		f("len(Signatures)", len(got.Signatures), len(want.Signatures))
	} else {
		for i := range got.Signatures {
			g, w := got.Signatures[i], want.Signatures[i]
			if g.KeyID != w.KeyID || g.Identity != w.Identity || g.Role != w.Role || !bytes.Equal(g.Sig, w.Sig) || !g.Received.Equal(w.Received) {
				f(fmt.Sprintf("Signatures[%d]", i), g, w)
			}
		}
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprintf("request %q differs: %v", want.ID, d)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one wrapping %q", what, err, target)
	}
}

func testRoundTrip(t *testing.T, h *harness) {
	s := h.fresh(t)
	r := newRequest("rt", at(0))
	r.Signatures = append(r.Signatures, partial("second", at(1)))
	r.Updated = at(1)
	r.Subjects[0].Digest["sha384"] = "cd"
	want := *r
	mustCreate(t, s, r)
	checkEqual(t, "CreateRequest changed its argument", r, &want)
	checkEqual(t, "GetRequest after CreateRequest", mustGet(t, s, "rt"), &want)

	// Changing what GetRequest returned must not change the store.
	got := mustGet(t, s, "rt")
	got.Payload[0] = 'X'
	got.Signatures[0].Sig[0] = 'X'
	got.Subjects[0].Digest["sha256"] = "changed"
	checkEqual(t, "GetRequest after changing a returned request", mustGet(t, s, "rt"), &want)
}

func testCreateMinimal(t *testing.T, h *harness) {
	s := h.fresh(t)
	r := &signer.Request{ID: "min", Created: at(0), Signatures: []signer.Partial{partial("requester", at(0))}}
	mustCreate(t, s, r)
	want := *r
	want.State, want.Updated = signer.Pending, at(0)
	got := mustGet(t, s, "min")
	checkEqual(t, "minimal request", got, &want)
	if !got.Expires.IsZero() {
		t.Errorf("Expires = %v, want the zero time", got.Expires)
	}
	if got.Envelope != nil {
		t.Errorf("Envelope = %q, want nil", got.Envelope)
	}
}

func testCreateDuplicateID(t *testing.T, h *harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("dup", at(0)))
	other := newRequest("dup", at(5))
	other.Gate = "other"
	wantErr(t, "CreateRequest with a taken ID", create(t.Context(), s, other), signer.ErrExists)
	checkEqual(t, "request after a refused duplicate", mustGet(t, s, "dup"), newRequest("dup", at(0)))
}

func testCreateInvalid(t *testing.T, h *harness) {
	s := h.fresh(t)
	twice := newRequest("twice", at(0))
	twice.Signatures = append(twice.Signatures, partial("requester", at(1)))
	complete := newRequest("complete", at(0))
	complete.State = signer.Complete
	for name, r := range map[string]*signer.Request{
		"no ID":                   newRequest("", at(0)),
		"same identity twice":     twice,
		"not pending":             complete,
		"no creation time":        newRequest("nocreated", time.Time{}),
		"signature without ident": func() *signer.Request { r := newRequest("noident", at(0)); r.Signatures[0].Identity = ""; return r }(),
	} {
		if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err == nil {
			t.Errorf("CreateRequest with %s succeeded", name)
		} else if r.ID != "" {
			if _, err := s.GetRequest(t.Context(), r.ID); !errors.Is(err, signer.ErrNotFound) {
				t.Errorf("after refusing a request with %s: GetRequest: %v, want ErrNotFound", name, err)
			}
		}
	}
}

func testGetUnknown(t *testing.T, h *harness) {
	s := h.fresh(t)
	_, err := s.GetRequest(t.Context(), "nope")
	wantErr(t, "GetRequest(unknown)", err, signer.ErrNotFound)
	_, err = s.SetState(t.Context(), "nope", signer.Cancelled, "", at(1), signer.LogState)
	wantErr(t, "SetState(unknown)", err, signer.ErrNotFound)
}

func testAddSignatureAppends(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("add", at(0))
	mustCreate(t, s, want)
	for i, who := range []string{"alice", "bob", "carol"} {
		p := partial(who, at(i+1))
		got, err := s.AddSignature(t.Context(), "add", p, neverFinish)
		if err != nil {
			t.Fatalf("AddSignature(%s): %v", who, err)
		}
		want.Signatures = append(want.Signatures, p)
		want.Updated = p.Received
		checkEqual(t, "request returned by AddSignature("+who+")", got, want)
		checkEqual(t, "GetRequest after AddSignature("+who+")", mustGet(t, s, "add"), want)
	}
}

func testAddSignatureUnknown(t *testing.T, h *harness) {
	s := h.fresh(t)
	called := false
	_, err := s.AddSignature(t.Context(), "nope", partial("alice", at(1)), func(r *signer.Request) (signer.Finish, error) {
		called = true
		return signer.Finished(r, nil), nil
	})
	wantErr(t, "AddSignature(unknown)", err, signer.ErrNotFound)
	if called {
		t.Error("finish was called for an unknown request")
	}
}

func testDuplicateIdentity(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("dupsig", at(0))
	mustCreate(t, s, want)
	p := partial("alice", at(1))
	if _, err := s.AddSignature(t.Context(), "dupsig", p, neverFinish); err != nil {
		t.Fatal(err)
	}
	want.Signatures = append(want.Signatures, p)
	want.Updated = p.Received

	again := p
	again.KeyID, again.Sig, again.Received = "another-key-id-same-key", []byte("other"), at(2)
	_, err := s.AddSignature(t.Context(), "dupsig", again, finishAt(1))
	wantErr(t, "AddSignature with the same identity", err, signer.ErrDuplicate)
	req := partial("requester", at(3))
	_, err = s.AddSignature(t.Context(), "dupsig", req, finishAt(1))
	wantErr(t, "AddSignature with the requester's identity", err, signer.ErrDuplicate)
	checkEqual(t, "request after refused duplicates", mustGet(t, s, "dupsig"), want)
}

func testDuplicateIdentityConcurrent(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("dupconc", at(0))
	mustCreate(t, s, want)
	const n = 1000
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok        int
		otherErrs []error
		accepted  signer.Partial
	)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p := partial("alice", at(1))
			p.Sig = []byte(fmt.Sprintf("attempt %d", i))
			_, err := s.AddSignature(context.Background(), "dupconc", p, neverFinish)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				accepted = p
			case !errors.Is(err, signer.ErrDuplicate):
				otherErrs = append(otherErrs, err)
			}
		}()
	}
	wg.Wait()
	if len(otherErrs) > 0 {
		t.Fatalf("%d of %d posts failed with errors other than ErrDuplicate, first: %v", len(otherErrs), n, otherErrs[0])
	}
	if ok != 1 {
		t.Fatalf("%d of %d posts of the same identity succeeded, want exactly 1", ok, n)
	}
	want.Signatures = append(want.Signatures, accepted)
	want.Updated = accepted.Received
	checkEqual(t, "request after concurrent duplicates", mustGet(t, s, "dupconc"), want)
}

func testFinishError(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("finerr", at(0))
	mustCreate(t, s, want)
	boom := errors.New("boom: cannot assemble composite")
	_, err := s.AddSignature(t.Context(), "finerr", partial("alice", at(1)), func(r *signer.Request) (signer.Finish, error) {
		return signer.Finished(r, []byte("envelope that must not be stored")), boom
	})
	wantErr(t, "AddSignature whose finish fails", err, boom)
	checkEqual(t, "request after a failed finish", mustGet(t, s, "finerr"), want)
	// The refused signature was not stored: the same key may sign again.
	p := partial("alice", at(2))
	if _, err := s.AddSignature(t.Context(), "finerr", p, neverFinish); err != nil {
		t.Fatalf("AddSignature after a failed finish: %v", err)
	}
}

// testEventShapes hands the store ledger events that do not record the
// change it makes: whether or not it keeps a ledger, it refuses the change
// and stores nothing.
func testEventShapes(t *testing.T, h *harness) {
	s := h.fresh(t)
	ctx := t.Context()
	want := newRequest("shape", at(0))
	mustCreate(t, s, want)
	other := newRequest("other", at(0))
	for name, finish := range map[string]signer.FinishFunc{
		"no event": func(r *signer.Request) (signer.Finish, error) { return signer.Finish{}, nil },
		"composite without its event": func(r *signer.Request) (signer.Finish, error) {
			f := signer.Finished(r, nil)
			f.Envelope = envelopeFor(r)
			return f, nil
		},
		"emitted event without a composite": func(r *signer.Request) (signer.Finish, error) {
			f := signer.Finished(r, envelopeFor(r))
			f.Envelope = nil
			return f, nil
		},
		"event of another request": func(r *signer.Request) (signer.Finish, error) {
			return signer.Finish{Events: []ledger.Event{signer.SignatureEvent(other, r.Signatures[len(r.Signatures)-1])}}, nil
		},
		"events in the wrong order": func(r *signer.Request) (signer.Finish, error) {
			f := signer.Finished(r, envelopeFor(r))
			f.Events[0], f.Events[1] = f.Events[1], f.Events[0]
			return f, nil
		},
		"opening event": func(r *signer.Request) (signer.Finish, error) {
			return signer.Finish{Events: []ledger.Event{signer.OpenedEvent(r)}}, nil
		},
	} {
		if _, err := s.AddSignature(ctx, "shape", partial("alice", at(1)), finish); err == nil {
			t.Errorf("AddSignature whose finish returns %s succeeded", name)
		}
		checkEqual(t, "request after a finish returning "+name, mustGet(t, s, "shape"), want)
	}
	fresh := newRequest("shape-new", at(0))
	for name, events := range map[string][]ledger.Event{
		"no events":             nil,
		"no signature event":    signer.CreatedEvents(fresh)[:1],
		"another request's":     signer.CreatedEvents(other),
		"an extra emitted one":  append(signer.CreatedEvents(fresh), signer.EmittedEvent(fresh)),
		"a state event instead": {signer.OpenedEvent(fresh), signer.StateEvent(fresh, signer.Cancelled, "x")},
	} {
		if err := s.CreateRequest(ctx, fresh, events); err == nil {
			t.Fatalf("CreateRequest with %s succeeded", name)
		}
		if _, err := s.GetRequest(ctx, "shape-new"); !errors.Is(err, signer.ErrNotFound) {
			t.Fatalf("after refusing a request with %s: GetRequest: %v, want ErrNotFound", name, err)
		}
	}
	for name, logged := range map[string]signer.LogFunc{
		"nil":      nil,
		"no event": func(*signer.Request) ([]ledger.Event, error) { return nil, nil },
		"another request's": func(*signer.Request) ([]ledger.Event, error) {
			return []ledger.Event{signer.StateEvent(other, signer.Cancelled, "")}, nil
		},
		"an error": func(*signer.Request) ([]ledger.Event, error) { return nil, errors.New("no") },
		"a panic":  func(*signer.Request) ([]ledger.Event, error) { panic("log function panicked") },
	} {
		if _, err := s.SetState(ctx, "shape", signer.Cancelled, "because", at(2), logged); err == nil {
			t.Errorf("SetState whose log function returns %s succeeded", name)
		}
		checkEqual(t, "request after a state change logged by "+name, mustGet(t, s, "shape"), want)
	}
}

func testFinishPanic(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("finpanic", at(0))
	mustCreate(t, s, want)
	_, err := s.AddSignature(t.Context(), "finpanic", partial("alice", at(1)), func(*signer.Request) (signer.Finish, error) {
		panic("finish panicked")
	})
	if err == nil {
		t.Fatal("AddSignature whose finish panics succeeded")
	}
	checkEqual(t, "request after a panicking finish", mustGet(t, s, "finpanic"), want)
	// The store still works.
	if _, err := s.AddSignature(t.Context(), "finpanic", partial("alice", at(2)), neverFinish); err != nil {
		t.Fatalf("AddSignature after a panicking finish: %v", err)
	}
}

func testFinishSees(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("finsees", at(0))
	mustCreate(t, s, want)
	p := partial("alice", at(1))
	var seen *signer.Request
	_, err := s.AddSignature(t.Context(), "finsees", p, func(r *signer.Request) (signer.Finish, error) {
		seen = r
		return signer.Finished(r, nil), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want.Signatures = append(want.Signatures, p)
	want.Updated = p.Received
	checkEqual(t, "request given to finish", seen, want)
}

func testFinishCompletes(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("fin", at(0))
	mustCreate(t, s, want)
	p := partial("alice", at(1))
	got, err := s.AddSignature(t.Context(), "fin", p, finishAt(2))
	if err != nil {
		t.Fatal(err)
	}
	want.Signatures = append(want.Signatures, p)
	want.State, want.Updated, want.Envelope = signer.Complete, p.Received, envelopeFor(want)
	checkEqual(t, "request returned by the completing AddSignature", got, want)
	checkEqual(t, "completed request", mustGet(t, s, "fin"), want)

	called := false
	_, err = s.AddSignature(t.Context(), "fin", partial("bob", at(2)), func(r *signer.Request) (signer.Finish, error) {
		called = true
		return signer.Finished(r, []byte("second composite")), nil
	})
	wantErr(t, "AddSignature on a complete request", err, signer.ErrNotPending)
	if called {
		t.Error("finish was called for a complete request")
	}
	checkEqual(t, "complete request after a late signature", mustGet(t, s, "fin"), want)
}

// testGetRequestRow: GetRequestRow gives a request as GetRequest does,
// without its signatures.
func testGetRequestRow(t *testing.T, h *harness) {
	s := h.fresh(t)
	row := func(r *signer.Request) *signer.Request {
		c := *r
		c.Signatures = nil
		return &c
	}
	mustCreate(t, s, newRequest("row", at(0)))
	got, err := s.GetRequestRow(t.Context(), "row")
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "row of a pending request", got, row(mustGet(t, s, "row")))
	if _, err := s.AddSignature(t.Context(), "row", partial("alice", at(1)), finishAt(2)); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetRequestRow(t.Context(), "row"); err != nil {
		t.Fatal(err)
	}
	full := mustGet(t, s, "row")
	if len(full.Envelope) == 0 {
		t.Fatal("completed request has no envelope")
	}
	checkEqual(t, "row of a complete request", got, row(full))
	_, err = s.GetRequestRow(t.Context(), "nope")
	wantErr(t, "GetRequestRow(unknown)", err, signer.ErrNotFound)
}

// testRacingFinal races final signatures: whichever commits the threshold
// completes the request, exactly once, and every acknowledged signature is
// stored.
func testRacingFinal(t *testing.T, h *harness) {
	s := h.fresh(t)
	const (
		rounds    = 10
		racers    = 16
		threshold = 4 // the requester's signature and 3 more
	)
	for round := range rounds {
		id := fmt.Sprintf("race-%d", round)
		mustCreate(t, s, newRequest(id, at(round)))
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			acked    = map[string]bool{}
			complete []*signer.Request
			failures []error
		)
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p := partial(fmt.Sprintf("racer-%d", i), at(round+i+1))
				r, err := s.AddSignature(context.Background(), id, p, finishAt(threshold))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					acked[p.Identity] = true
					if r.State == signer.Complete || r.Envelope != nil {
						complete = append(complete, r)
					}
				case !errors.Is(err, signer.ErrNotPending):
					failures = append(failures, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%s: %d racers failed with errors other than ErrNotPending, first: %v", id, len(failures), failures[0])
		}
		if len(complete) != 1 {
			t.Fatalf("%s: %d AddSignature calls completed the request, want exactly 1", id, len(complete))
		}
		got := mustGet(t, s, id)
		if got.State != signer.Complete || !bytes.Equal(got.Envelope, complete[0].Envelope) {
			t.Fatalf("%s: stored state %s envelope %q; the completing call returned %s %q", id, got.State, got.Envelope, complete[0].State, complete[0].Envelope)
		}
		if want := threshold; len(got.Signatures) != want {
			t.Errorf("%s: %d signatures stored, want %d (finish completes at %d)", id, len(got.Signatures), want, threshold)
		}
		checkEqual(t, id+": stored request against the completing call's", got, complete[0])
		stored := map[string]bool{}
		for _, p := range got.Signatures[1:] {
			stored[p.Identity] = true
		}
		if fmt.Sprint(stored) != fmt.Sprint(acked) {
			t.Errorf("%s: stored signatures %v, acknowledged %v", id, stored, acked)
		}
	}
}

// testConcurrentRequests signs many requests at once, as a coordinator
// under load does.
func testConcurrentRequests(t *testing.T, h *harness) {
	s := h.fresh(t)
	const requests, signers = 8, 8
	for i := range requests {
		mustCreate(t, s, newRequest(fmt.Sprintf("conc-%d", i), at(i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, requests*signers)
	for i := range requests {
		for j := range signers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.AddSignature(context.Background(), fmt.Sprintf("conc-%d", i), partial(fmt.Sprintf("s%d", j), at(j+1)), neverFinish)
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent AddSignature: %v", err)
		}
	}
	for i := range requests {
		if got := mustGet(t, s, fmt.Sprintf("conc-%d", i)); len(got.Signatures) != signers+1 {
			t.Errorf("request %s has %d signatures, want %d", got.ID, len(got.Signatures), signers+1)
		}
	}
}

func testSetState(t *testing.T, h *harness) {
	s := h.fresh(t)
	for i, to := range []signer.State{signer.Cancelled, signer.Expired} {
		id := "set-" + string(to)
		want := newRequest(id, at(i))
		mustCreate(t, s, want)
		got, err := s.SetState(t.Context(), id, to, "because "+string(to), at(10), signer.LogState)
		if err != nil {
			t.Fatalf("SetState(%s, %s): %v", id, to, err)
		}
		want.State, want.StateReason, want.Updated = to, "because "+string(to), at(10)
		checkEqual(t, "request returned by SetState", got, want)
		checkEqual(t, "request after SetState", mustGet(t, s, id), want)

		for _, again := range []signer.State{signer.Cancelled, signer.Expired} {
			_, err = s.SetState(t.Context(), id, again, "again", at(11), signer.LogState)
			wantErr(t, fmt.Sprintf("SetState(%s) on a %s request", again, to), err, signer.ErrNotPending)
		}
		_, err = s.AddSignature(t.Context(), id, partial("late", at(12)), finishAt(1))
		wantErr(t, fmt.Sprintf("AddSignature on a %s request", to), err, signer.ErrNotPending)
		checkEqual(t, "request after refused changes", mustGet(t, s, id), want)
	}

	mustCreate(t, s, newRequest("set-complete", at(5)))
	want, err := s.AddSignature(t.Context(), "set-complete", partial("alice", at(6)), finishAt(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []signer.State{signer.Cancelled, signer.Expired} {
		_, err = s.SetState(t.Context(), "set-complete", to, "too late", at(7), signer.LogState)
		wantErr(t, fmt.Sprintf("SetState(%s) on a complete request", to), err, signer.ErrNotPending)
	}
	checkEqual(t, "complete request after refused SetState", mustGet(t, s, "set-complete"), want)
}

func testSetStateInvalid(t *testing.T, h *harness) {
	s := h.fresh(t)
	want := newRequest("setinv", at(0))
	mustCreate(t, s, want)
	for _, to := range []signer.State{signer.Pending, signer.Complete, "", "bogus"} {
		if _, err := s.SetState(t.Context(), "setinv", to, "", at(1), signer.LogState); err == nil {
			t.Errorf("SetState(%q) succeeded", to)
		}
	}
	checkEqual(t, "request after invalid SetState", mustGet(t, s, "setinv"), want)
}

func ids(rs []*signer.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func checkList(t *testing.T, s signer.Store, opts signer.ListOptions, want ...string) []*signer.Request {
	t.Helper()
	got, err := s.ListRequests(t.Context(), opts)
	if err != nil {
		t.Fatalf("ListRequests(%+v): %v", opts, err)
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("ListRequests(%+v) = %v, want %v", opts, ids(got), want)
	}
	return got
}

func testListByState(t *testing.T, h *harness) {
	s := h.fresh(t)
	checkList(t, s, signer.ListOptions{})
	// Created out of order: listing follows creation time, not insertion.
	for _, i := range []int{3, 1, 2, 0} {
		mustCreate(t, s, newRequest(fmt.Sprintf("l%d", i), at(i)))
	}
	if _, err := s.SetState(t.Context(), "l1", signer.Cancelled, "", at(9), signer.LogState); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSignature(t.Context(), "l2", partial("alice", at(9)), finishAt(2)); err != nil {
		t.Fatal(err)
	}
	all := checkList(t, s, signer.ListOptions{}, "l0", "l1", "l2", "l3")
	for _, r := range all {
		checkEqual(t, "listed request", r, mustGet(t, s, r.ID))
	}
	checkList(t, s, signer.ListOptions{State: signer.Pending}, "l0", "l3")
	checkList(t, s, signer.ListOptions{State: signer.Cancelled}, "l1")
	checkList(t, s, signer.ListOptions{State: signer.Complete}, "l2")
	checkList(t, s, signer.ListOptions{State: signer.Expired})
}

func testListExpiresBefore(t *testing.T, h *harness) {
	s := h.fresh(t)
	for i := range 4 {
		r := newRequest(fmt.Sprintf("e%d", i), at(i))
		r.Expires = at(100 - 10*i) // e3 expires first
		mustCreate(t, s, r)
	}
	never := newRequest("never", at(5))
	never.Expires = time.Time{}
	mustCreate(t, s, never)
	checkList(t, s, signer.ListOptions{ExpiresBefore: at(80)}, "e3")
	checkList(t, s, signer.ListOptions{ExpiresBefore: at(81)}, "e2", "e3")
	checkList(t, s, signer.ListOptions{ExpiresBefore: at(1000)}, "e0", "e1", "e2", "e3")
	if _, err := s.SetState(t.Context(), "e2", signer.Expired, "", at(90), signer.LogState); err != nil {
		t.Fatal(err)
	}
	checkList(t, s, signer.ListOptions{ExpiresBefore: at(1000), State: signer.Pending}, "e0", "e1", "e3")
}

func testListPaging(t *testing.T, h *harness) {
	s := h.fresh(t)
	var want []string
	for i := range 25 {
		// Pairs share a creation time: ties are broken by ID.
		id := fmt.Sprintf("p%02d", 24-i)
		mustCreate(t, s, newRequest(id, at(i/2)))
		want = append(want, id)
	}
	want = append([]string(nil), want...)
	for i := 0; i+1 < len(want); i += 2 {
		want[i], want[i+1] = want[i+1], want[i]
	}
	checkList(t, s, signer.ListOptions{Limit: 3}, want[:3]...)
	var got []string
	after := ""
	for {
		page, err := s.ListRequests(t.Context(), signer.ListOptions{Limit: 4, After: after})
		if err != nil {
			t.Fatalf("ListRequests(after %q): %v", after, err)
		}
		if len(page) > 4 {
			t.Fatalf("ListRequests(Limit 4) returned %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, ids(page)...)
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paged listing = %v, want %v", got, want)
	}
	for i := 0; i < 105; i++ {
		mustCreate(t, s, newRequest(fmt.Sprintf("z%03d", i), at(1000+i)))
	}
	if all, err := s.ListRequests(t.Context(), signer.ListOptions{}); err != nil || len(all) != 100 {
		t.Errorf("ListRequests with no limit returned %d, %v; want the default limit of 100", len(all), err)
	}
	_, err := s.ListRequests(t.Context(), signer.ListOptions{After: "no-such-request"})
	wantErr(t, "ListRequests after an unknown request", err, signer.ErrNotFound)
	if _, err := s.ListRequests(t.Context(), signer.ListOptions{Limit: -1}); err == nil {
		t.Error("ListRequests with a negative limit succeeded")
	}
}

func testListSummary(t *testing.T, h *harness) {
	s := h.fresh(t)
	for i := range 3 {
		mustCreate(t, s, newRequest(fmt.Sprintf("s%d", i), at(i)))
	}
	if _, err := s.AddSignature(t.Context(), "s1", partial("alice", at(9)), finishAt(2)); err != nil {
		t.Fatal(err)
	}
	got := checkList(t, s, signer.ListOptions{Summary: true}, "s0", "s1", "s2")
	for _, r := range got {
		if r.Payload != nil || r.Subjects != nil || r.Envelope != nil {
			t.Errorf("summary of %s has payload (%d bytes), subjects (%d) or envelope (%d bytes)", r.ID, len(r.Payload), len(r.Subjects), len(r.Envelope))
		}
		full := mustGet(t, s, r.ID)
		full.Payload, full.Subjects, full.Envelope = nil, nil, nil
		checkEqual(t, "summary", r, full)
	}
	checkList(t, s, signer.ListOptions{Summary: true, State: signer.Complete}, "s1")
	checkList(t, s, signer.ListOptions{Summary: true, After: "s0", Limit: 1}, "s1")
}

// testPendingRequests checks a store that is a [signer.PendingReader]
// (the interface is optional): only pending requests among the IDs, as
// summaries with their signatures, whatever the order and repeats of the
// IDs.
func testPendingRequests(t *testing.T, h *harness) {
	s := h.fresh(t)
	pr, ok := s.(closeOnce).Store.(signer.PendingReader)
	if !ok {
		t.Skip("the store reads no pending requests at once (signer.PendingReader is optional)")
	}
	for i := range 5 {
		mustCreate(t, s, newRequest(fmt.Sprintf("p%d", i), at(i)))
	}
	if _, err := s.AddSignature(t.Context(), "p0", partial("alice", at(9)), neverFinish); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSignature(t.Context(), "p1", partial("alice", at(9)), finishAt(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetState(t.Context(), "p2", signer.Cancelled, "", at(9), signer.LogState); err != nil {
		t.Fatal(err)
	}
	got, err := pr.PendingRequests(t.Context(), []string{"p3", "p1", "nope", "p0", "p2", "p0"})
	if err != nil {
		t.Fatalf("PendingRequests: %v", err)
	}
	byID := map[string]*signer.Request{}
	for _, r := range got {
		if byID[r.ID] != nil {
			t.Errorf("PendingRequests returned %s twice", r.ID)
		}
		byID[r.ID] = r
	}
	if len(byID) != 2 || byID["p0"] == nil || byID["p3"] == nil {
		t.Fatalf("PendingRequests returned %v; want p0 and p3", ids(got))
	}
	for _, r := range byID {
		full := mustGet(t, s, r.ID)
		full.Payload, full.Subjects, full.Envelope = nil, nil, nil
		checkEqual(t, "pending request", r, full)
	}
	if n := len(byID["p0"].Signatures); n != 2 {
		t.Errorf("p0 has %d signatures; want 2", n)
	}
	if got, err := pr.PendingRequests(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("PendingRequests(none) = %v, %v; want nothing", ids(got), err)
	}
}

func testCountByState(t *testing.T, h *harness) {
	s := h.fresh(t)
	count := func(state signer.State, want int64) {
		t.Helper()
		n, err := s.CountRequests(t.Context(), state)
		if err != nil {
			t.Fatalf("CountRequests(%q): %v", state, err)
		}
		if n != want {
			t.Errorf("CountRequests(%q) = %d, want %d", state, n, want)
		}
	}
	count("", 0)
	count(signer.Pending, 0)
	for i := range 5 {
		mustCreate(t, s, newRequest(fmt.Sprintf("c%d", i), at(i)))
	}
	if _, err := s.SetState(t.Context(), "c1", signer.Cancelled, "", at(9), signer.LogState); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetState(t.Context(), "c2", signer.Expired, "", at(9), signer.LogState); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSignature(t.Context(), "c3", partial("alice", at(9)), finishAt(2)); err != nil {
		t.Fatal(err)
	}
	count("", 5)
	count(signer.Pending, 2)
	count(signer.Cancelled, 1)
	count(signer.Expired, 1)
	count(signer.Complete, 1)
}

func testDurability(t *testing.T, h *harness) {
	s := h.openClosing(t, "durable")
	var want []*signer.Request
	for i := range 5 {
		r := newRequest(fmt.Sprintf("d%d", i), at(i))
		mustCreate(t, s, r)
		want = append(want, r)
	}
	var err error
	if want[1], err = s.AddSignature(t.Context(), "d1", partial("alice", at(10)), neverFinish); err != nil {
		t.Fatal(err)
	}
	if want[2], err = s.AddSignature(t.Context(), "d2", partial("alice", at(11)), finishAt(2)); err != nil {
		t.Fatal(err)
	}
	if want[3], err = s.SetState(t.Context(), "d3", signer.Cancelled, "withdrawn", at(12), signer.LogState); err != nil {
		t.Fatal(err)
	}
	// Concurrent acknowledged writes, then close at once.
	var wg sync.WaitGroup
	results := make([]*signer.Request, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.AddSignature(context.Background(), "d4", partial(fmt.Sprintf("c%d", i), at(20+i)), neverFinish)
			if err != nil {
				t.Errorf("AddSignature: %v", err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = h.openClosing(t, "durable")
	for _, w := range want[:4] {
		checkEqual(t, "after reopening", mustGet(t, s, w.ID), w)
	}
	got := mustGet(t, s, "d4")
	if len(got.Signatures) != 1+len(results) {
		t.Fatalf("after reopening, d4 has %d signatures, want %d", len(got.Signatures), 1+len(results))
	}
	have := map[string]bool{}
	for _, p := range got.Signatures {
		have[p.Identity] = true
	}
	for _, r := range results {
		if r != nil && !have[r.Signatures[len(r.Signatures)-1].Identity] {
			t.Errorf("acknowledged signature %s lost after reopening", r.Signatures[len(r.Signatures)-1].Identity)
		}
	}
	checkList(t, s, signer.ListOptions{}, "d0", "d1", "d2", "d3", "d4")
	// Writes still work after reopening.
	if _, err := s.AddSignature(t.Context(), "d0", partial("after", at(50)), neverFinish); err != nil {
		t.Fatalf("AddSignature after reopening: %v", err)
	}
}

func testCancelledContext(t *testing.T, h *harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("ctx", at(0)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := create(ctx, s, newRequest("ctx-new", at(1))); err == nil {
		t.Error("CreateRequest with a cancelled context succeeded")
	}
	if _, err := s.GetRequest(ctx, "ctx"); err == nil {
		t.Error("GetRequest with a cancelled context succeeded")
	}
	if _, err := s.ListRequests(ctx, signer.ListOptions{}); err == nil {
		t.Error("ListRequests with a cancelled context succeeded")
	}
	if _, err := s.AddSignature(ctx, "ctx", partial("alice", at(2)), neverFinish); err == nil {
		t.Error("AddSignature with a cancelled context succeeded")
	}
	if _, err := s.SetState(ctx, "ctx", signer.Cancelled, "", at(3), signer.LogState); err == nil {
		t.Error("SetState with a cancelled context succeeded")
	}
	// A cancelled call that returned an error changed nothing.
	checkEqual(t, "request after cancelled calls", mustGet(t, s, "ctx"), newRequest("ctx", at(0)))
	if _, err := s.GetRequest(t.Context(), "ctx-new"); !errors.Is(err, signer.ErrNotFound) {
		t.Errorf("request created with a cancelled context: GetRequest: %v, want ErrNotFound", err)
	}

	// Contexts cancelled while calls are under way: every call returns, and
	// every one that succeeded is stored.
	ctx, cancel = context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.AddSignature(ctx, "ctx", partial(fmt.Sprintf("c%d", i), at(i+10)), neverFinish); err == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}()
		if i == 25 {
			cancel()
		}
	}
	wg.Wait()
	cancel()
	// A call cut short may or may not have taken effect (a commit can
	// succeed as its caller gives up), but none that succeeded is lost.
	if got := mustGet(t, s, "ctx"); len(got.Signatures) < 1+acked {
		t.Errorf("%d signatures stored, but %d calls succeeded (+1 requester)", len(got.Signatures), acked)
	}
}

func testUseAfterClose(t *testing.T, h *harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("closed", at(0)))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.GetRequest(t.Context(), "closed"); err == nil {
		t.Error("GetRequest after Close succeeded")
	}
	if err := create(t.Context(), s, newRequest("closed-2", at(1))); err == nil {
		t.Error("CreateRequest after Close succeeded")
	}
	if _, err := s.AddSignature(t.Context(), "closed", partial("alice", at(1)), neverFinish); err == nil {
		t.Error("AddSignature after Close succeeded")
	}
}
