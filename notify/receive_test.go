package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// logged returns a log key and a message for entry 1 of a two-entry log,
// with its inclusion proof.
func logged(t *testing.T) (*keys.PublicKey, notify.Message) {
	t.Helper()
	ctx := context.Background()
	l, pub := newLog(t, time.Now)
	st := ledger.NewMemoryStorage()
	ev := ledger.Event{Type: ledger.PolicyPublished, PolicyVersion: 1, PayloadSHA256: strings.Repeat("a", 64)}
	ev2 := ev
	ev2.PolicyVersion = 2
	if _, err := l.Append(ctx, st, ev, ev2); err != nil {
		t.Fatal(err)
	}
	cp, err := l.Sign(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ledger.NewBundle(ctx, st, cp, 1)
	if err != nil {
		t.Fatal(err)
	}
	return pub, notify.Message{Format: notify.MessageFormat, ID: "d-1", Type: ledger.PolicyPublished, PolicyVersion: 2, Index: 1, Inclusion: b}
}

func TestReceive(t *testing.T) {
	secret, err := notify.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := notify.NewSecret()
	logKey, m := logged(t)
	otherKey, _ := logged(t)
	now := time.Now()
	body := func(m notify.Message) []byte {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	wrongIndex := m
	wrongIndex.Index = 0
	reminder := notify.Message{Format: notify.MessageFormat, ID: "d-2", Type: notify.ReminderType, RequestID: "r1"}
	cases := []struct {
		name    string
		signer  notify.Secret
		logKey  *keys.PublicKey
		body    []byte
		want    error // nil: accepted
		refused bool  // refused with another error (the signature's)
		logged  bool
	}{
		{"genuine, no log key", secret, nil, body(m), nil, false, false},
		{"genuine, proof verified", secret, logKey, body(m), nil, false, true},
		{"reminder: no ledger event to prove", secret, logKey, body(reminder), nil, false, false},
		{"another log's key", secret, otherKey, body(m), notify.ErrNotLogged, false, false},
		{"proof of another entry", secret, logKey, body(wrongIndex), notify.ErrNotLogged, false, false},
		{"signed but not a message", secret, logKey, []byte(`[1, 2]`), notify.ErrNotAMessage, false, false},
		{"signed with another secret", other, logKey, body(m), nil, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			notify.SetHeaders(h, tc.signer, "d-1", now, tc.body)
			d, err := notify.Receive(secret, tc.logKey, origin, h, tc.body, now)
			switch {
			case tc.refused:
				if err == nil || errors.Is(err, notify.ErrNotLogged) || errors.Is(err, notify.ErrNotAMessage) {
					t.Fatalf("err = %v, want the signature refused", err)
				}
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			case err != nil:
				t.Fatal(err)
			case d.ID != "d-1" || d.Logged != tc.logged:
				t.Fatalf("received %+v, want id d-1, logged %v", d, tc.logged)
			case tc.logged && !strings.Contains(d.Summary(), "in the log at 1"):
				t.Fatalf("summary %q does not say where it is logged", d.Summary())
			}
		})
	}
}

func TestSampleMessage(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, typ := range notify.EventTypes() {
		m, err := notify.SampleMessage(typ, now)
		if err != nil || !m.Sample || m.Type != typ || m.Inclusion != nil || !strings.HasPrefix(m.ID, "sample-20300102T030405Z") {
			t.Fatalf("sample of %s: %+v, %v", typ, m, err)
		}
	}
	if _, err := notify.SampleMessage("request.opened; rm -rf", now); err == nil || !strings.Contains(err.Error(), "is not an event type") {
		t.Fatalf("unknown type: %v", err)
	}
}
