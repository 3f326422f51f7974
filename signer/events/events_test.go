package events_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/events"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

// world: a SQLite store keeping a real ledger, and a hub streaming it.
func world(t *testing.T, cfg events.Config) (*sqlitestore.Store, *httptest.Server) {
	t.Helper()
	lg, err := ledger.New(ledger.Config{Origin: "quorate.test/log", Signer: testkeys.Signer(t, hsm.ECDSAP256), Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Ledger: lg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg.Ledger = s.Ledger()
	if cfg.Poll == 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	h := events.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.Run(ctx) })
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() { srv.Close(); cancel(); wg.Wait() })
	return s, srv
}

// smallBuffers makes accepted connections' send buffers small, so a client
// that stops reading blocks the server after little data.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

func appendRevocations(t *testing.T, s *sqlitestore.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		ev := ledger.Event{Type: ledger.KeyRevoked, KeyID: fmt.Sprintf("%064x", i)}
		if _, err := s.AppendEvents(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

var errEnough = errors.New("enough")

// TestResumeAfterDisconnect: connections cut mid-stream are resumed by the
// client with Last-Event-ID; every event arrives once, in log order.
func TestResumeAfterDisconnect(t *testing.T) {
	s, srv := world(t, events.Config{Page: 3})
	appendRevocations(t, s, 0, 10)
	var got []int64
	go func() {
		time.Sleep(20 * time.Millisecond)
		appendRevocations(t, s, 10, 10)
	}()
	err := (&client.Client{BaseURL: srv.URL}).Events(t.Context(), client.EventsOptions{Since: 0, Reconnect: time.Millisecond}, func(ev client.Event) error {
		got = append(got, ev.Index)
		if ev.Type != string(ledger.KeyRevoked) {
			return fmt.Errorf("event %d of type %q", ev.Index, ev.Type)
		}
		if len(got)%4 == 0 {
			srv.CloseClientConnections() // the disconnect
		}
		if len(got) == 20 {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("Events: %v after %v", err, got)
	}
	for i, idx := range got {
		if idx != int64(i) {
			t.Fatalf("events %v: want 0..19 once each, in order", got)
		}
	}
}

// TestFromNow: without since, a stream starts at the end of the log.
func TestFromNow(t *testing.T) {
	s, srv := world(t, events.Config{})
	appendRevocations(t, s, 0, 3)
	var got []int64
	err := (&client.Client{BaseURL: srv.URL}).Events(t.Context(), client.EventsOptions{Since: -1, Opened: func() { appendRevocations(t, s, 3, 2) }},
		func(ev client.Event) error {
			if got = append(got, ev.Index); len(got) == 2 {
				return errEnough
			}
			return nil
		})
	if !errors.Is(err, errEnough) || got[0] != 3 || got[1] != 4 {
		t.Fatalf("Events = %v, %v; want 3 and 4", got, err)
	}
}

func TestRequests(t *testing.T) {
	_, srv := world(t, events.Config{MaxClients: 1})
	for _, tc := range []struct {
		name   string
		header string
		query  string
		status int
	}{
		{"BadLastEventID", "x", "", http.StatusBadRequest},
		{"NegativeSince", "", "?since=-4", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.query, nil)
			if tc.header != "" {
				req.Header.Set("Last-Event-ID", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d", resp.StatusCode, tc.status)
			}
		})
	}
	t.Run("TooManyStreams", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		first, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Body.Close()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("second stream: %d; want 503", resp.StatusCode)
		}
	})
}

// TestSlowClientDropped: a client that stops reading is disconnected once a
// page cannot be written within WriteTimeout, freeing its slot (MaxClients
// 1: a new stream is then accepted). Nothing is queued for it meanwhile.
func TestSlowClientDropped(t *testing.T) {
	s, srv := world(t, events.Config{MaxClients: 1, Page: 256, WriteTimeout: 50 * time.Millisecond})
	evs := make([]ledger.Event, 1500) // ~1.5 MB of events: more than the (small) socket buffers hold
	reason := strings.Repeat("compromised ", 80)
	for i := range evs {
		evs[i] = ledger.Event{Type: ledger.KeyRevoked, KeyID: fmt.Sprintf("%064x", i), Detail: map[string]string{"reason": reason}}
	}
	if _, err := s.AppendEvents(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
	slow, err := (&http.Client{Transport: tr}).Get(srv.URL + "?since=0") // never read
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(srv.URL + "?since=1499")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow client still holds the only slot: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
