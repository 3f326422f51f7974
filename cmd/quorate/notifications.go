package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
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
// scheduler, with their metrics on reg. The channel it returns is closed
// once the dispatcher stopped after ctx ended: it lets the deliveries under
// way finish and records them, which needs the store still open.
func (a *app) startNotifications(ctx context.Context, cfg *notify.Config, retry time.Duration, store signer.Store, svc *signer.Coordinator, lg *ledger.Log, reg prometheus.Registerer, log *zap.Logger) (<-chan struct{}, error) {
	ob, ok := store.(outboxStore)
	if !ok {
		return nil, fmt.Errorf("--webhooks: the store keeps no webhook outbox")
	}
	m, err := notify.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	m.Init(cfg)
	host, _ := os.Hostname()
	status := &signer.WaitingStatus{Coordinator: svc, Store: store}
	d, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: ob.Outbox(), Owner: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), a.now().UnixNano()),
		Prover: signer.LedgerProver(ob, lg), Status: status, Clock: a.now, KeyNames: func() policy.KeyNames { return svc.Trust().KeyNames }, Metrics: m, Logger: log.Named("webhooks"), Poll: 250 * time.Millisecond, Batch: 256, Parallel: 64,
		Backoff: notify.Backoff{Initial: retry, Max: max(retry, time.Hour), Jitter: 0.2, MaxAttempts: 30}})
	if err != nil {
		return nil, err
	}
	s := &notify.Scheduler{Config: cfg, Outbox: ob.Outbox(), Pending: status.Pending, Clock: a.now, Metrics: m, Logger: log.Named("reminders")}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = d.Run(ctx)
	}()
	go func() { _ = s.Run(ctx) }()
	log.Info("webhooks on", zap.Int("endpoints", len(cfg.Endpoints)))
	return stopped, nil
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
