package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/events"
)

// loadWebhooks reads serve --webhooks FILE; bad configuration stops the
// start with the parser's message (it names the endpoint and the fault).
func (a *app) loadWebhooks(f *serveFlags) (*notify.Config, error) {
	if f.webhooks == "" {
		return nil, nil
	}
	if f.logKey == "" {
		return nil, usageErr("--webhooks needs the transparency log (--log-key URI): deliveries carry the event's inclusion proof")
	}
	c, err := notify.LoadConfig(f.webhooks, a.getenv)
	if err != nil {
		return nil, usageErr("--webhooks: %w", err)
	}
	return c, nil
}

// outboxStore is a store that keeps the webhook outbox (both stores do).
type outboxStore interface {
	signer.LedgerStore
	Outbox() notify.Outbox
}

// startNotifications runs the webhook dispatcher (leases named after this
// process, so replicas never send a delivery concurrently) and the reminder
// scheduler, with their metrics on reg.
func (a *app) startNotifications(ctx context.Context, cfg *notify.Config, retry time.Duration, store signer.Store, svc *signer.Coordinator, lg *ledger.Log, reg prometheus.Registerer, log *zap.Logger) error {
	ob, ok := store.(outboxStore)
	if !ok {
		return fmt.Errorf("--webhooks: the store keeps no webhook outbox")
	}
	m, err := notify.NewMetrics(reg)
	if err != nil {
		return err
	}
	m.Init(cfg)
	host, _ := os.Hostname()
	// The latest checkpoint, verified once per note (not per delivery).
	var (
		cpMu     sync.Mutex
		lastNote []byte
		lastCP   *ledger.SignedCheckpoint
	)
	prover := notify.LedgerProver{Storage: ob.Ledger(), Checkpoint: func(ctx context.Context) (*ledger.SignedCheckpoint, error) {
		_, note, err := ob.LatestCheckpoint(ctx)
		if errors.Is(err, signer.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		cpMu.Lock()
		defer cpMu.Unlock()
		if lastCP != nil && bytes.Equal(note, lastNote) {
			return lastCP, nil
		}
		cp, err := ledger.OpenCheckpoint(note, lg.Origin(), lg.PublicKey())
		if err != nil {
			return nil, err
		}
		lastNote, lastCP = note, cp
		return cp, nil
	}}
	status := waitingStatus{svc: svc, store: store}
	d, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: ob.Outbox(), Owner: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), a.now().UnixNano()),
		Prover: prover, Status: status, Clock: a.now, KeyNames: func() policy.KeyNames { return svc.Trust().KeyNames }, Metrics: m, Logger: log.Named("webhooks"), Poll: 250 * time.Millisecond, Batch: 256, Parallel: 64,
		Backoff: notify.Backoff{Initial: retry, Max: max(retry, time.Hour), Jitter: 0.2, MaxAttempts: 30}})
	if err != nil {
		return err
	}
	s := &notify.Scheduler{Config: cfg, Outbox: ob.Outbox(), Pending: status.pending, Clock: a.now, Metrics: m, Logger: log.Named("reminders")}
	go func() { _ = d.Run(ctx) }()
	go func() { _ = s.Run(ctx) }()
	log.Info("webhooks on", zap.Int("endpoints", len(cfg.Endpoints)))
	return nil
}

// waitingStatus says who a request waits on, from the store and the policy
// the coordinator enforces.
type waitingStatus struct {
	svc   *signer.Coordinator
	store signer.Store
}

// Waiting implements [notify.Status]: the roles below threshold counting
// the signatures logged up to index.
func (w waitingStatus) Waiting(ctx context.Context, id string, index int64) (*notify.Waiting, error) {
	r, err := w.store.GetRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != signer.Pending {
		return nil, nil
	}
	wt, _ := w.waiting(r, index)
	return wt, nil
}

// waiting returns who r waits on counting signatures logged up to index,
// and since when each missing role has been waited on.
func (w waitingStatus) waiting(r *signer.Request, index int64) (*notify.Waiting, map[string]notify.Mark) {
	set := w.svc.Trust().Roles
	tally, err := set.NewTally(r.Gate)
	if err != nil {
		return nil, nil
	}
	since := map[string]notify.Mark{}
	opened := notify.Mark{Index: r.LogIndex, Time: r.Created}
	for _, p := range r.Signatures {
		if p.LogIndex > index {
			continue
		}
		if k, ok := set.Keys[p.KeyID]; ok {
			if role, err := tally.Add(k); err == nil {
				since[role] = notify.Mark{Index: p.LogIndex, Time: p.Received}
			}
		}
	}
	wt := notify.WaitingFrom(set, tally.Results(), w.svc.Trust().KeyNames, r.Expires)
	out := map[string]notify.Mark{}
	for _, m := range wt.Missing {
		out[m.Role] = opened
		if s, ok := since[m.Role]; ok && s.Index > opened.Index {
			out[m.Role] = s
		}
	}
	return wt, out
}

// pending lists the pending requests for the reminder scheduler.
func (w waitingStatus) pending(ctx context.Context) ([]notify.Pending, error) {
	var out []notify.Pending
	after := ""
	for {
		rs, err := w.store.ListRequests(ctx, signer.ListOptions{State: signer.Pending, Limit: 200, After: after})
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			wt, since := w.waiting(r, 1<<62)
			out = append(out, notify.Pending{RequestID: r.ID, Gate: r.Gate, OpenedIndex: r.LogIndex, ExpiresAt: r.Expires, Waiting: wt, Since: since})
		}
		if len(rs) < 200 {
			return out, nil
		}
		after = rs[len(rs)-1].ID
	}
}

// eventStream returns the hub of GET /v1/events and its handler (nil, nil
// without a transparency log: there are no events to stream).
func eventStream(store signer.Store, svc *signer.Coordinator, log *zap.Logger) (*events.Hub, http.Handler) {
	ls, ok := store.(signer.LedgerStore)
	if !ok {
		return nil, nil
	}
	h := events.New(events.Config{Ledger: ls.Ledger(), Logger: log.Named("events"), KeyNames: func() policy.KeyNames { return svc.Trust().KeyNames }})
	return h, h
}
