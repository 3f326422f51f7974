package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/console"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/policychange"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

type serveFlags struct {
	trust, data, store, listen, addrFile string
	tlsCert, tlsKey, clientCA, readToken string
	logLevel, debugAddr, logKey          string
	logFormat                            string
	tufKey, stateDir                     string
	noConsole                            bool
	tufTimestamp, tufSnapshot, tufEvery  time.Duration
	rateLimit                            float64
	burst                                int
	maxBody, maxSigBody, maxPropBody     int64
	maxInFlight, maxInFlightPerClient    int64
	connsPerClient                       int
	idleTimeout                          time.Duration
	maxTTL, expiryEvery, shutdownGrace   time.Duration
	checkpointEvery                      time.Duration
	webhooks                             string
	hooks                                *notify.Config
	webhookRetry                         time.Duration
	indep                                independentFlags
}

func (a *app) serveCommand() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve --trust DIR --data DIR [--listen ADDR] [--tls-cert F --tls-key F]",
		Short: "Run the coordinator",
		Long: `Run the coordinator: it holds signing requests, verifies each partial
signature as it arrives, and emits the composite attestation once every role of
the gate meets its threshold. State lives in an embedded SQLite database in
--data DIR (or PostgreSQL with --store postgres://...).

Every state change is authorized by a signature from a key in the policy; there
are no admin passwords. Reads can be left open or require --read-token-file.
Serve TLS with --tls-cert/--tls-key (and --client-ca to require client
certificates); plain HTTP is for loopback and tests.

API: see api/openapi.yaml. Console: /ui/ (docs/console.md; --no-console turns it off).
Metrics: /metrics. Health: /healthz, /readyz.`,
		Example: "  quorate serve --trust trust --data /var/lib/quorate --listen :8443 --tls-cert tls.crt --tls-key tls.key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), &f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.trust, "trust", "", "trust directory (root.json, targets.json)")
	fl.StringVar(&f.data, "data", "", "data directory for the embedded SQLite store")
	fl.StringVar(&f.store, "store", "", "store URL instead of --data: postgres://user@host/db")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7443", "address to listen on")
	fl.StringVar(&f.addrFile, "addr-file", "", "write the address actually listened on to this file (useful with port 0)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fl.StringVar(&f.clientCA, "client-ca", "", "require client certificates signed by this CA (PEM)")
	fl.StringVar(&f.readToken, "read-token-file", "", "require this bearer token (file contents) for reads")
	fl.Float64Var(&f.rateLimit, "rate-limit", 50, "requests per second per client (0: no limit)")
	fl.IntVar(&f.burst, "rate-burst", 100, "burst allowed per client")
	fl.Int64Var(&f.maxBody, "max-body", 4<<20, "largest body opening a request, in bytes")
	fl.Int64Var(&f.maxSigBody, "max-signature-body", 64<<10, "largest body of a signature, cancellation or policy change approval, in bytes")
	fl.Int64Var(&f.maxPropBody, "max-proposal-body", 1<<20, "largest body proposing a policy change, in bytes")
	fl.Int64Var(&f.maxInFlight, "max-in-flight-bytes", 32<<20, "request body bytes held at once across all clients; beyond, requests wait up to 1s, then get 503 with Retry-After")
	fl.Int64Var(&f.maxInFlightPerClient, "max-in-flight-bytes-per-client", 8<<20, "share of --max-in-flight-bytes one client (certificate subject, else IP) may hold; a client holding nothing may always send one body")
	fl.IntVar(&f.connsPerClient, "max-conns-per-client", 32, "open connections allowed per client IP address (0: no limit); more are closed on accept")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 30*time.Second, "how long an idle keep-alive connection is kept open")
	fl.DurationVar(&f.maxTTL, "max-request-ttl", 30*24*time.Hour, "longest lifetime a request may ask for")
	fl.DurationVar(&f.expiryEvery, "expiry-interval", 30*time.Second, "how often pending requests past their expiry are marked expired")
	fl.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "time to finish in-flight requests on SIGTERM")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "", "text or json (default: text when stderr is a terminal, else json)")
	fl.StringVar(&f.logKey, "log-key", "", "key URI of the transparency log's signing key (must be the key the policy names: 'quorate policy log-key')")
	fl.StringVar(&f.webhooks, "webhooks", "", "webhook configuration FILE (JSON, docs/notifications.md): deliver ledger events and reminders, signed, at least once; needs --log-key")
	fl.DurationVar(&f.webhookRetry, "webhook-retry", notify.DefaultBackoff.Initial, "wait before the first retry of a failed webhook delivery (doubling, with jitter, up to 1h; 30 attempts)")
	fl.DurationVar(&f.checkpointEvery, "checkpoint-interval", 5*time.Second, "how often a new log checkpoint is signed while the log grows")
	fl.BoolVar(&f.noConsole, "no-console", false, "do not serve the web console under /ui/")
	fl.StringVar(&f.debugAddr, "debug-addr", "", "serve Go profiling (net/http/pprof) on this loopback address")
	fl.StringVar(&f.tufKey, "tuf-key", "", "key URI of the online key signing the TUF repository's snapshot and timestamp under /v1/tuf/ (the key the root names: 'quorate policy online-key')")
	fl.StringVar(&f.stateDir, "state-dir", "", "directory for the TUF repository's signed snapshot and timestamp and for pending policy changes (default: --data DIR)")
	fl.DurationVar(&f.tufTimestamp, "tuf-timestamp-expiry", tufrepo.DefaultTimestampExpiry, "lifetime of each TUF timestamp (re-signed after half of it)")
	fl.DurationVar(&f.tufSnapshot, "tuf-snapshot-expiry", tufrepo.DefaultSnapshotExpiry, "lifetime of each TUF snapshot (re-signed after half of it)")
	fl.DurationVar(&f.tufEvery, "tuf-refresh-interval", 10*time.Minute, "how often the TUF timestamp is checked for renewal")
	f.indep.add(fl)
	return c
}

func (a *app) newLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, usageErr("--log-level: %w", err)
	}
	if format == "" {
		// Human-readable for a person at a terminal; JSON for collectors.
		format = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	switch format {
	case "json":
		encoder = zapcore.NewJSONEncoder(enc)
	case "text":
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, usageErr("--log-format %q: want text or json", format)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.AddSync(a.stderr), lvl)), nil
}

// openStore opens the store; observe sees its write batches.
func (a *app) openStore(ctx context.Context, f *serveFlags, log *zap.Logger, lg *ledger.Log, observe func(signer.BatchStats)) (signer.Store, error) {
	switch {
	case f.store != "" && f.data != "":
		return nil, usageErr("--store and --data exclude each other")
	case strings.HasPrefix(f.store, "postgres://") || strings.HasPrefix(f.store, "postgresql://"):
		return pgstore.Open(ctx, f.store, pgstore.Options{Logger: log, Ledger: lg, Webhooks: f.hooks, BatchObserver: observe, Clock: a.now})
	case f.store != "":
		return nil, usageErr("--store %q: want postgres://…", f.store)
	case f.data == "":
		return nil, usageErr("--data DIR (or --store URL) is required")
	}
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	return sqlitestore.Open(ctx, f.data, sqlitestore.Options{Logger: log, Ledger: lg, Webhooks: f.hooks, BatchObserver: observe, Clock: a.now})
}

// serveGCPercent is the garbage collector's target a coordinator runs with
// when GOGC is not set: twice Go's default. A coordinator's live heap is
// small and bounded (its caches are bounded by entries, see
// docs/operations.md) and collection was a tenth of its CPU under load;
// in two bench/load pairs, 200 gave one PostgreSQL replica +9% and +7%
// accepted signatures per second (SQLite +13% and -2%) for 10-20 MiB more
// resident set.
const serveGCPercent = 200

// serveMemoryLimit is the soft memory limit a coordinator runs with when
// it sets the collector's target and GOMEMLIMIT is not set: above it the
// collector works harder, so the headroom serveGCPercent gives a small
// heap does not multiply a large one (many maximum-size bodies at once:
// test/e2e TestMemoryBoundedUnderLoad peaked at 470-565 MiB with GOGC=200
// alone, 367-401 MiB with Go's default, 333-337 MiB with both).
const serveMemoryLimit = 256 << 20

// tuneGC sets the collector's target to serveGCPercent unless the
// environment sets GOGC and then, unless it sets GOMEMLIMIT, the soft
// memory limit to serveMemoryLimit. It returns what it set (0: nothing).
func tuneGC(getenv func(string) string) (gogc int, limit int64) {
	if getenv("GOGC") != "" {
		return 0, 0
	}
	debug.SetGCPercent(serveGCPercent)
	if getenv("GOMEMLIMIT") != "" {
		return serveGCPercent, 0
	}
	debug.SetMemoryLimit(serveMemoryLimit)
	return serveGCPercent, serveMemoryLimit
}

func (a *app) serve(ctx context.Context, f *serveFlags) error {
	if err := a.applyTestClock(); err != nil {
		return err
	}
	log, err := a.newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usageErr("--tls-cert and --tls-key go together")
	}
	if gogc, limit := tuneGC(a.getenv); gogc != 0 {
		log.Info("garbage collector target set", zap.Int("gogc", gogc), zap.Int64("softMemoryLimit", limit),
			zap.String("why", "unset GOGC (GOMEMLIMIT); set them to choose others"))
	}
	if f.clientCA != "" && f.tlsCert == "" {
		return usageErr("--client-ca needs --tls-cert and --tls-key")
	}
	statePath := ""
	if f.data != "" {
		statePath = filepath.Join(f.data, "trusted-versions.json")
	}
	trust, err := a.loadTrust(f.trust, statePath, a.now())
	if err != nil {
		return err
	}
	if f.hooks, err = a.loadWebhooks(f); err != nil {
		return err
	}
	lg, err := a.openLog(ctx, f, trust)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := a.openStore(ctx, f, log, lg, signer.NewStoreMetrics(reg).ObserveBatch)
	if err != nil {
		return err
	}
	defer store.Close()
	// The database and the log remember the highest policy versions too:
	// deleting trusted-versions.json does not let an older directory in.
	if err := signer.RememberTrust(ctx, store, trust); err != nil {
		return fmt.Errorf("trust directory %s: %w", f.trust, err)
	}
	pending := func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := store.CountRequests(ctx, signer.Pending)
		if err != nil {
			return -1
		}
		return float64(n)
	}
	stateDir := f.stateDir
	if stateDir == "" {
		stateDir = f.data
	}
	var repo *tufrepo.Repo
	if f.tufKey != "" {
		if stateDir == "" {
			return usageErr("--tuf-key needs --state-dir DIR (or --data DIR) to keep the TUF versions served")
		}
		if repo, err = a.openTUF(ctx, f, stateDir, trust, log); err != nil {
			return err
		}
	}
	svc, err := signer.New(signer.Config{Trust: trust, Store: store, Logger: log, Clock: a.now, MaxTTL: f.maxTTL, Metrics: signer.NewMetrics(reg, pending), Ledger: lg,
		TUF: repo})
	if err != nil {
		return err
	}
	var changes signer.Router
	if stateDir != "" {
		var ls signer.LedgerStore
		if lg != nil {
			ls = store.(signer.LedgerStore) // signer.New checked it
		}
		pc, err := policychange.New(policychange.Config{Coordinator: svc, Store: store, Ledger: ls, Clock: a.now, Logger: log,
			TrustDir: f.trust, StateDir: stateDir, Load: func() (*policy.Trust, error) { return a.loadServed(ctx, store, f.trust, statePath) }})
		if err != nil {
			return err
		}
		// Before serving: import change files of earlier versions, record a
		// publication a restart interrupted (with its ledger entries).
		if err := pc.Recover(ctx); err != nil {
			return err
		}
		go pc.Run(ctx, 10*time.Second) // retries a publication the store or ledger refused
		changes = pc
	}
	// The last checkpoint signed is kept in the state directory too, so a
	// database edit that rewrites the log is caught (/readyz, ledgerapi.Server.Fault).
	if err := svc.Ledger().OpenState(ctx, stateDir); err != nil {
		return fmt.Errorf("transparency log state: %w", err)
	}
	wit, err := a.openWitnessing(&f.indep, trust, svc.Ledger(), store, stateDir, reg, log)
	if err != nil {
		return err
	}
	var readToken string
	if f.readToken != "" {
		data, err := os.ReadFile(f.readToken)
		if err != nil {
			return usageErr("reading --read-token-file: %w", err)
		}
		if readToken = strings.TrimSpace(string(data)); readToken == "" {
			return usageErr("--read-token-file %s is empty", f.readToken)
		}
	}
	var ui http.Handler
	if !f.noConsole {
		if ui, err = console.New(console.Config{Coordinator: svc, ReadToken: readToken, Gatherer: reg, Logger: log, Clock: a.now}); err != nil {
			return err
		}
	}
	hub, stream := eventStream(store, svc, log)
	api := signer.NewAPI(signer.HTTPConfig{Events: stream, Console: ui, Coordinator: svc, PolicyChanges: changes, Logger: log, ReadToken: readToken, MaxBody: f.maxBody, MaxSignatureBody: f.maxSigBody, MaxProposalBody: f.maxPropBody, MaxInFlight: f.maxInFlight, MaxInFlightPerClient: f.maxInFlightPerClient, RateLimit: f.rateLimit, Burst: f.burst, Gatherer: reg,
		Ready: func(ctx context.Context) error {
			_, err := store.CountRequests(ctx, signer.Pending)
			return err
		}})
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: f.idleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: zap.NewStdLog(log)}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return usageErr("loading TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if f.clientCA != "" {
			pem, err := os.ReadFile(f.clientCA)
			if err != nil {
				return usageErr("reading --client-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return usageErr("--client-ca %s holds no PEM certificate", f.clientCA)
			}
			srv.TLSConfig.ClientCAs, srv.TLSConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.listen, err)
	}
	ln = signer.LimitConnsPerClient(ln, f.connsPerClient)
	addr := ln.Addr().String()
	if host, _, _ := net.SplitHostPort(addr); f.tlsCert == "" && !net.ParseIP(host).IsLoopback() {
		log.Warn("serving plain HTTP on a non-loopback address; use --tls-cert/--tls-key in production", zap.String("addr", addr))
	}
	if f.addrFile != "" {
		if err := os.WriteFile(f.addrFile, []byte(addr+"\n"), 0o644); err != nil {
			return err
		}
	}
	if f.debugAddr != "" {
		if host, _, _ := net.SplitHostPort(f.debugAddr); !net.ParseIP(host).IsLoopback() {
			return usageErr("--debug-addr must be a loopback address")
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { _ = http.ListenAndServe(f.debugAddr, mux) }()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go svc.RunExpiry(ctx, f.expiryEvery)
	go svc.Ledger().RunCheckpoints(ctx, f.checkpointEvery)
	if hub != nil {
		go hub.Run(ctx)
	}
	var hooksStopped <-chan struct{} // closed once the webhook dispatcher stopped (nil without webhooks)
	if f.hooks != nil {
		if hooksStopped, err = a.startNotifications(ctx, f.hooks, f.webhookRetry, store, svc, lg, reg, log); err != nil {
			return err
		}
	}
	go wit.Run(ctx)
	go a.reloadOnHUP(ctx, svc, store, f.trust, statePath, log)
	if repo != nil {
		go repo.Run(ctx, f.tufEvery)
	}
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("coordinator listening", zap.String("addr", addr), zap.Bool("tls", srv.TLSConfig != nil), zap.Int64("policyVersion", trust.Version()), zap.Strings("gates", trust.Roles.GateNames()))
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), f.shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutting down: %w", err)
		}
		if hooksStopped != nil {
			// Deliveries under way finish and are recorded before the
			// store closes, within the same grace.
			select {
			case <-hooksStopped:
			case <-sctx.Done():
				log.Warn("shutting down: webhook deliveries still under way are left to their leases (sent again later)")
			}
		}
	}
	return nil
}

// openLog opens the transparency log's signer, when --log-key is given, and
// checks it is the key the policy names: verifiers would reject anything else.
func (a *app) openLog(ctx context.Context, f *serveFlags, trust *policy.Trust) (*ledger.Log, error) {
	lk, lkErr := trust.LogKey()
	if f.logKey == "" {
		if lkErr == nil {
			return nil, usageErr("the policy names a transparency log (%s): give its key with --log-key URI", lk.Origin)
		}
		return nil, nil
	}
	if lkErr != nil {
		return nil, usageErr("--log-key: %w", lkErr)
	}
	s, err := a.registry.Signer(ctx, f.logKey)
	if err != nil {
		return nil, fmt.Errorf("opening the log key: %w", err)
	}
	if s.Public().Identity() != lk.Key.Identity() {
		s.Close()
		return nil, usageErr("--log-key %s is key %s, but the policy names log key %s", hsm.Redact(f.logKey), keys.Short(s.Public().ID()), keys.Short(lk.Key.ID()))
	}
	return ledger.New(ledger.Config{Origin: lk.Origin, Signer: s, Clock: a.now})
}

// openTUF opens the online key and the TUF repository; the key must be the
// one the trust root names for snapshot and timestamp.
func (a *app) openTUF(ctx context.Context, f *serveFlags, stateDir string, trust *policy.Trust, log *zap.Logger) (*tufrepo.Repo, error) {
	s, err := a.registry.Signer(ctx, f.tufKey)
	if err != nil {
		return nil, fmt.Errorf("opening the TUF online key: %w", err)
	}
	if err := author.CheckOnlineKey(trust.Root, s.Public()); err != nil {
		s.Close()
		return nil, usageErr("--tuf-key %s: %w", hsm.Redact(f.tufKey), err)
	}
	repo, err := tufrepo.New(ctx, tufrepo.Config{Signer: s, StateDir: stateDir, Source: policy.DirSource(f.trust),
		TimestampExpiry: f.tufTimestamp, SnapshotExpiry: f.tufSnapshot, Clock: a.now, Logger: log}, trust)
	if err != nil {
		s.Close()
		return nil, err
	}
	return repo, nil
}

// loadServed loads the trust directory as loadTrust does, then refuses it
// when the database or the log remembers a higher version, and records its
// versions in the database.
func (a *app) loadServed(ctx context.Context, store signer.Store, dir, statePath string) (*policy.Trust, error) {
	t, err := a.loadTrust(dir, statePath, a.now())
	if err != nil {
		return nil, err
	}
	if err := signer.RememberTrust(ctx, store, t); err != nil {
		return nil, fmt.Errorf("trust directory %s: %w", dir, err)
	}
	return t, nil
}

// reloadOnHUP re-reads the trust directory on SIGHUP and, when it verifies
// and is not older, makes the coordinator enforce it.
func (a *app) reloadOnHUP(ctx context.Context, svc *signer.Coordinator, store signer.Store, dir, statePath string, log *zap.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			t, err := a.loadServed(ctx, store, dir, statePath)
			if err == nil {
				err = svc.SetTrust(t)
			}
			if err != nil {
				log.Error("policy reload refused; still enforcing the previous policy", zap.Error(err))
			}
		}
	}
}
