package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorate-dev/quorate/oci"
)

// ServeOptions are what `quorate admission` gives [Serve]: the CLI parses
// flags into them.
type ServeOptions struct {
	// Listener is where to serve (the CLI listens on --listen).
	Listener net.Listener
	// ConfigFile is the admission configuration ([ParseConfig]).
	ConfigFile string
	// Mode, when set, overrides the configuration's mode.
	Mode Mode
	// CertFile and KeyFile are the TLS pair ([ServerOptions]).
	CertFile, KeyFile string
	// Trust keeps the policy; Serve fetches once, then refreshes it in the
	// background until ctx ends.
	Trust *RefreshingTrust
	// Registry resolves tags and finds approvals.
	Registry *oci.Client
	// RequireLog refuses approvals without a verifying log bundle.
	RequireLog bool
	// BreakGlass receives break-glass events (required when the
	// configuration enables break-glass).
	BreakGlass BreakGlassReporter
	// Reports, when set, receives a report of each image verification
	// (see [Options.Reports]).
	Reports VerificationReporter
	// Metrics receives the metrics and is served at /metrics.
	Metrics *prometheus.Registry
	// Logger receives the server's log; nil discards.
	Logger *slog.Logger
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
}

// Serve runs the webhook until ctx ends, then shuts down gracefully
// (reviews in flight are answered). It returns an error when it cannot
// start (configuration, TLS pair) or the server fails. A first policy fetch
// that fails is logged, not fatal: the webhook serves, not ready, and
// refreshes until the coordinator answers.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Listener == nil || o.Trust == nil || o.Registry == nil || o.Metrics == nil {
		return errors.New("admission: Serve needs a listener, a trust source, a registry client and a metrics registry")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	data, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", o.ConfigFile, err)
	}
	switch o.Mode {
	case "":
	case Enforce, Audit:
		cfg.Mode = o.Mode
	default:
		return fmt.Errorf("%w: mode %q: want %s or %s", ErrConfig, o.Mode, Enforce, Audit)
	}
	h, err := New(Options{Config: cfg, Registry: o.Registry, Registerer: o.Metrics, BreakGlass: o.BreakGlass, Reports: o.Reports, Logger: log,
		Verifier: &PolicyVerifier{Registry: o.Registry, Trust: o.Trust.Trust, RequireLog: o.RequireLog, Now: o.Trust.Now}})
	if err != nil {
		return err
	}
	srv, err := NewServer(h, ServerOptions{CertFile: o.CertFile, KeyFile: o.KeyFile, Ready: o.Trust.Ready, Gatherer: o.Metrics})
	if err != nil {
		return err
	}
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	if err := o.Trust.Refresh(ctx); err != nil {
		log.LogAttrs(ctx, slog.LevelError, "first policy fetch failed: not ready until it succeeds")
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go o.Trust.Run(runCtx)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(o.Listener, "", "") }()
	log.LogAttrs(ctx, slog.LevelInfo, "admission webhook serving", slog.String("address", o.Listener.Addr().String()),
		slog.String("mode", string(cfg.Mode)), slog.Int("rules", len(cfg.Rules)), slog.Bool("break_glass", cfg.BreakGlass.Enabled))
	select {
	case err := <-served:
		return fmt.Errorf("admission webhook: %w", err)
	case <-ctx.Done():
	}
	timeout := o.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("admission webhook shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admission webhook: %w", err)
	}
	return nil
}
