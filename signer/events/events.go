// Package events serves the ledger's events as a Server-Sent Events stream,
// GET /v1/events: each event appended to the transparency log, in log
// order, with its log index as the SSE id, so a client that reconnects with
// Last-Event-ID resumes exactly after the last event it saw.
//
// The stream reads the store's ledger (not in-process notifications), so a
// client of one PostgreSQL replica sees the events every replica appends:
// a [Hub] polls the ledger's size (one query per interval for all clients)
// and [Hub.Wake] shortens the wait after a local append.
//
// Each event is sent as
//
//	id: <log index>
//	event: <type>
//	data: <quorate/notification/v1 JSON, without waiting or inclusion>
//
// Memory per connection is bounded: events are read from the ledger in
// pages of at most [Config.Page], never queued for a client; a client that
// does not take a page within [Config.WriteTimeout] is disconnected (it can
// resume with Last-Event-ID).
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
)

// Config configures a [Hub].
type Config struct {
	// Ledger is the store's read view of the transparency log.
	Ledger ledger.Storage
	// Poll is how often the ledger's size is read (default 250ms).
	Poll time.Duration
	// Page is the most events read and written at once per client
	// (default 256).
	Page int
	// WriteTimeout is how long a client may take to accept a page (or a
	// heartbeat) before it is disconnected (default 10s).
	WriteTimeout time.Duration
	// Heartbeat is the interval of SSE comments keeping idle connections
	// open through proxies (default 15s).
	Heartbeat time.Duration
	// MaxClients caps concurrent streams (default 256); more get 503.
	MaxClients int
	Logger     *zap.Logger
	// KeyNames returns the enforced policy's key names, so that each
	// event names its key (key_name, key_owner); nil: key IDs only.
	KeyNames func() policy.KeyNames
}

// Hub watches the ledger's size and serves streams.
type Hub struct {
	cfg     Config
	mu      sync.Mutex
	size    int64
	grown   chan struct{} // closed when size grows, then replaced
	wake    chan struct{}
	clients chan struct{}
}

// New returns a Hub; run [Hub.Run] for streams to advance.
func New(cfg Config) *Hub {
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Page <= 0 {
		cfg.Page = 256
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Hub{cfg: cfg, size: -1, grown: make(chan struct{}), wake: make(chan struct{}, 1), clients: make(chan struct{}, cfg.MaxClients)}
}

// Wake makes Run read the ledger's size now (after a local append).
func (h *Hub) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run polls the ledger's size until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.Poll)
	defer t.Stop()
	for {
		if n, err := h.cfg.Ledger.Size(ctx); err != nil {
			if ctx.Err() == nil {
				h.cfg.Logger.Warn("event stream: reading the ledger size", zap.Error(err))
			}
		} else {
			h.mu.Lock()
			if n > h.size {
				h.size = n
				close(h.grown)
				h.grown = make(chan struct{})
			}
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.wake:
		}
	}
}

// state returns the last size read and a channel closed when it grows.
func (h *Hub) state() (int64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.size, h.grown
}

// start returns the first index a request asks for: after Last-Event-ID,
// else ?since=INDEX, else the current end of the ledger.
func start(r *http.Request, size func() (int64, error)) (int64, error) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < -1 {
			return 0, fmt.Errorf("Last-Event-ID %q is not a log index", v)
		}
		return n + 1, nil
	}
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("since=%q is not a log index", v)
		}
		return n, nil
	}
	return size()
}

// Event is the data of one SSE event.
func Event(e *ledger.Entry) ([]byte, error) { return NamedEvent(e, nil) }

// NamedEvent is the data of one SSE event, its key named from names
// (display only).
func NamedEvent(e *ledger.Entry, names policy.KeyNames) ([]byte, error) {
	m := notify.MessageFromEntry(e, e.Detail["gate"])
	m.SetKeyName(names)
	return json.Marshal(m)
}

// ServeHTTP streams the ledger's events.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.clients <- struct{}{}:
		defer func() { <-h.clients }()
	default:
		w.Header().Set("Retry-After", "5")
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "too many event streams open; retry later")
		return
	}
	ctx := r.Context()
	next, err := start(r, func() (int64, error) { return h.cfg.Ledger.Size(ctx) })
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flush := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		return rc.Flush() == nil
	}
	// retry: how long browsers wait before reconnecting; id: where the
	// stream starts, so a client that reconnects before any event arrived
	// resumes from here.
	if _, err := fmt.Fprintf(w, "retry: 2000\nid: %d\n\n", next-1); err != nil || !flush() {
		return
	}
	beat := time.NewTicker(h.cfg.Heartbeat)
	defer beat.Stop()
	for {
		size, grown := h.state()
		if size < 0 { // the hub has not read the ledger yet
			if size, err = h.cfg.Ledger.Size(ctx); err != nil {
				return
			}
		}
		for next < size {
			end := min(size, next+int64(h.cfg.Page))
			raw, err := h.cfg.Ledger.ReadEntries(ctx, next, end)
			if err != nil {
				if ctx.Err() == nil {
					h.cfg.Logger.Warn("event stream: reading the ledger", zap.Int64("from", next), zap.Error(err))
				}
				return
			}
			var b strings.Builder
			var names policy.KeyNames
			if h.cfg.KeyNames != nil {
				names = h.cfg.KeyNames()
			}
			for i, data := range raw {
				e, err := ledger.ParseEntry(data)
				if err != nil {
					h.cfg.Logger.Error("event stream: unreadable ledger entry", zap.Int64("index", next+int64(i)), zap.Error(err))
					return
				}
				js, err := NamedEvent(e, names)
				if err != nil {
					return
				}
				fmt.Fprintf(&b, "id: %d\nevent: %s\ndata: %s\n\n", e.Index, e.Type, js)
			}
			_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
			if _, err := w.Write([]byte(b.String())); err != nil || !flush() {
				return // a slow or gone client: it resumes with Last-Event-ID
			}
			next = end
		}
		select {
		case <-ctx.Done():
			return
		case <-grown:
		case <-beat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || !flush() {
				return
			}
		}
	}
}
