package sqlitestore_test

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/notify/outboxtest"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

func TestOutbox(t *testing.T) {
	outboxtest.TestOutbox(t, func(t *testing.T, now func() time.Time) notify.Outbox {
		s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Clock: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Outbox()
	})
}

// TestOutboxWrittenWithEvents checks that each logged event of a request
// puts one row per subscribed endpoint in the outbox, in the event's
// transaction, with its canonical entry and the request's gate.
const hexKey = "9c1f00000000000000000000000000000000000000000000000000000000abcd"

func TestOutboxWrittenWithEvents(t *testing.T) {
	s := openWithWebhooks(t, `{"endpoints": [
		{"name": "all", "url": "http://127.0.0.1:9/a", "secret": {"env": "S"}},
		{"name": "opened", "url": "http://127.0.0.1:9/b", "secret": {"env": "S"}, "events": ["request.opened"]}]}`)
	now := time.Now()
	r := &signer.Request{ID: "r1", Gate: "production", PolicyVersion: 1, Requester: hexKey, Created: now, Expires: now.Add(time.Hour), PayloadType: "t", Payload: []byte("p"),
		Signatures: []signer.Partial{{KeyID: hexKey, Identity: "i1", Role: "dev", Sig: []byte("s"), Received: now}}}
	if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
		t.Fatal(err)
	}
	// Two signatures at once (a batch of them, queuing their deliveries
	// with their rows), not enough to complete it.
	var wg sync.WaitGroup
	for _, who := range []string{"i2", "i3"} {
		wg.Go(func() {
			p := signer.Partial{KeyID: hexKey, Identity: who, Role: "dev", Sig: []byte("s"), Received: now}
			if _, err := s.AddSignature(t.Context(), "r1", p, func(r *signer.Request) (signer.Finish, error) {
				return signer.Finished(r, nil), nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := s.SetState(t.Context(), "r1", signer.Cancelled, "no", now, signer.LogState); err != nil {
		t.Fatal(err)
	}
	o := s.Outbox()
	if n, _, err := o.Stats(t.Context()); err != nil || n != 6 {
		t.Fatalf("Stats = %d, %v; want 6 rows (5 events to all, 1 to opened)", n, err)
	}
	got := map[string][]int64{}
	for {
		ds, err := o.Claim(t.Context(), "t", time.Minute, 10, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			e, err := ledger.ParseEntry(d.Entry)
			if err != nil || e.Index != d.Index || d.Gate != "production" || d.OrderKey != "r1" {
				t.Fatalf("delivery %+v: entry %v, %v", d, e, err)
			}
			got[d.Endpoint] = append(got[d.Endpoint], d.Index)
			if err := o.Done(t.Context(), "t", d.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(got["all"], []int64{0, 1, 2, 3, 4}) || !slices.Equal(got["opened"], []int64{0}) {
		t.Fatalf("delivered %v; want all: [0 1 2 3 4] in order, opened: [0]", got)
	}
}

// openWithWebhooks opens a store with a ledger and the webhook
// configuration webhooks (endpoints' secrets from $S).
func openWithWebhooks(t *testing.T, webhooks string) *sqlitestore.Store {
	t.Helper()
	priv, err := filekey.NewPrivateKey(hsm.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := filekey.Parse(testkeys.PEM(t, priv), "log key")
	if err != nil {
		t.Fatal(err)
	}
	lg, err := ledger.New(ledger.Config{Origin: "quorate.test/log", Signer: ls, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := notify.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := notify.ParseConfig([]byte(webhooks), t.TempDir(), func(string) string { return secret.Text() })
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Ledger: lg, Webhooks: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestOutboxRunsPlan: a claim finds its heads from the pending index and
// reads what follows them starting from each head, by its ID, then along
// the pending index, however many heads.
// Joined the other way SQLite chose, from 64 heads on, to look for each
// pending delivery's head among every row of its endpoint (pending × all
// rows: claims took seconds under load, and deliveries stalled).
func TestOutboxRunsPlan(t *testing.T) {
	s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The heads: each key's first pending ID from the pending index, then
	// those rows by ID.
	plan := sqlitestore.QueryPlan(t, s, storesql.HeadsQuery(true), 0, 0, 256)
	if !slices.ContainsFunc(plan, func(p string) bool {
		return strings.Contains(p, "USING COVERING INDEX webhook_outbox_pending (state=?)")
	}) || !slices.ContainsFunc(plan, func(p string) bool { return strings.Contains(p, "SEARCH o USING INTEGER PRIMARY KEY") }) {
		t.Fatalf("plan of a claim's heads:\n%s\nwant the pending index alone, then the heads by ID", strings.Join(plan, "\n"))
	}
	for _, heads := range []int{1, 3, 64, 256} {
		args := []any{0, 0, 10}
		for i := range heads {
			args = append(args, i+1)
		}
		plan := sqlitestore.QueryPlan(t, s, storesql.RunsQuery(heads), args...)
		if len(plan) < 2 || !strings.Contains(plan[0], "SEARCH h USING INTEGER PRIMARY KEY") ||
			!strings.Contains(plan[1], "SEARCH o USING INDEX webhook_outbox_pending (state=? AND endpoint=? AND order_key=? AND id>?)") {
			t.Fatalf("plan of a claim's runs:\n%s\nwant the heads by ID, then the pending index from each", strings.Join(plan, "\n"))
		}
	}
}

// TestOutboxEntriesFromTheLog: an event's outbox row keeps no copy of its
// entry (every lease and settlement rewrites the row); a claim reads the
// entry from the log, the very bytes logged. A reminder at the same index
// has no entry.
func TestOutboxEntriesFromTheLog(t *testing.T) {
	s := openWithWebhooks(t, `{"endpoints": [{"name": "all", "url": "http://127.0.0.1:9/a", "secret": {"env": "S"}}]}`)
	now := time.Now()
	r := &signer.Request{ID: "r1", Gate: "production", PolicyVersion: 1, Requester: hexKey, Created: now, Expires: now.Add(time.Hour), PayloadType: "t", Payload: []byte("p"),
		Signatures: []signer.Partial{{KeyID: hexKey, Identity: "i1", Role: "dev", Sig: []byte("s"), Received: now}}}
	if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
		t.Fatal(err)
	}
	o := s.Outbox()
	if _, err := o.Enqueue(t.Context(), notify.Delivery{Endpoint: "all", MessageID: "reminder-0", Index: 0, OrderKey: "other",
		Reminder: &notify.ReminderInfo{Reason: "waiting", Role: "dev"}}); err != nil {
		t.Fatal(err)
	}
	if n := sqlitestore.QueryInt(t, s, `SELECT COUNT(*) FROM webhook_outbox WHERE entry IS NOT NULL`); n != 0 {
		t.Fatalf("%d outbox rows keep an entry; want none", n)
	}
	ds, err := o.Claim(t.Context(), "t", time.Minute, 10, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("claimed %d deliveries; want the opening, the signature and the reminder", len(ds))
	}
	log := sqlitestore.TxLedger(t, s)
	for _, d := range ds {
		if d.Reminder != nil {
			if d.Entry != nil {
				t.Fatalf("the reminder came with entry %q", d.Entry)
			}
			continue
		}
		logged, err := log.ReadEntries(t.Context(), d.Index, d.Index+1)
		if err != nil {
			t.Fatal(err)
		}
		if len(logged) != 1 || !bytes.Equal(d.Entry, logged[0]) || len(d.Entry) == 0 {
			t.Fatalf("delivery of entry %d carries %q; the log has %q", d.Index, d.Entry, logged)
		}
	}
}
