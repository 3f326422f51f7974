package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/admission"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

func (a *app) admissionCommand() *cobra.Command {
	var cf clientFlags
	var listen, addrFile, certFile, keyFile, configFile, pin, cache, mode, metricsListen, logLevel string
	var requireLog, reportVerifications bool
	var refresh time.Duration
	var reg imageFlags
	c := &cobra.Command{
		Use:   "admission --tls-cert FILE --tls-key FILE --config-file FILE --coordinator URL --trust-root root.json",
		Short: "Run the Kubernetes admission webhook: admit only images approved for the namespace's gate",
		Long: `Run a Kubernetes ValidatingAdmissionWebhook server. The API server sends it
every Pod (containers, init and ephemeral containers) and every workload
template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)
created or updated in the namespaces the configuration's rules select; each
image must carry an approval for the rule's gate, attached to it in its
registry ('quorate attach' or 'request attestation --attach'). Images named
by tag are resolved to their digest now, and the answer names the digest
checked. A refusal names the image, its digest and the roles still missing.

What it needs:
  --tls-cert/--tls-key  the serving pair the API server trusts (the
                        webhook configuration's caBundle); re-read when the
                        files change (cert-manager renewals)
  --config-file FILE    namespaces -> gates, mode, break-glass, cache bounds
                        (examples/kubernetes/admission-config.json)
  --coordinator URL     where the policy comes from: its TUF repository,
  --trust-root FILE     verified from this root.json (obtained out of band)
                        on first start; later starts use the cache (--cache)

The policy is refreshed every --refresh and cached: while the coordinator is
unreachable the last policy fetched keeps deciding, until the TUF timestamp
it was verified with expires; then images not in the verdict cache are
denied and /readyz answers 503. A webhook started while the coordinator is
down, without a cache, is not ready until it answers.

--mode audit admits everything, warning (kubectl prints it) and counting
each image that enforce would refuse: roll out in audit, switch to enforce
when quorate_admission_image_denials_total stays at zero.

Each image verification (not those answered from the verdict cache) is
reported to the coordinator in the background (POST /v1/reports, as 'quorate
verify --report' does; --report-verifications=false to stop), which counts
them per gate and verdict (quorate_gate_verifications_total); a review never
waits for it, and a report that fails is counted
(quorate_admission_reports_total{result="failed"}) and logged at most once
a minute.

Break-glass (off unless the configuration enables it) admits a workload
annotated quorate.dev/break-glass: "<why>" without verification; each use is
logged, counted and reported to the coordinator (POST /v1/reports with reason
break_glass, authenticated with --token-file or --client-cert) when it is
reachable.

Endpoints: /validate/<rule> (the webhook), /healthz, /readyz, /metrics (also
on --metrics-listen, plain HTTP, for a scraper without the CA). Stop it with
SIGTERM: reviews in flight are answered.

Registry credentials: the Docker config ($DOCKER_CONFIG/config.json, with
credential helpers), e.g. a mounted imagePullSecret. See docs/kubernetes.md
for installation, failure modes and the failurePolicy to choose.`,
		Example: `  quorate admission --listen :8443 --tls-cert /tls/tls.crt --tls-key /tls/tls.key \
    --config-file /etc/quorate/admission-config.json \
    --coordinator https://quorate.example.com --trust-root /etc/quorate/root.json \
    --token-file /var/run/quorate/token --cache /var/cache/quorate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if certFile == "" || keyFile == "" || configFile == "" {
				return usageErr("--tls-cert FILE, --tls-key FILE and --config-file FILE are required")
			}
			if mode != "" && mode != string(admission.Enforce) && mode != string(admission.Audit) {
				return usageErr("--mode %q: want enforce or audit", mode)
			}
			fc, err := a.tufConfig(&cf, pin, cache)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(fc.CacheDir, 0o700); err != nil {
				return fmt.Errorf("the TUF cache: %w", err)
			}
			log, err := admissionLogger(a, logLevel)
			if err != nil {
				return err
			}
			trust := &admission.RefreshingTrust{Interval: refresh, Now: a.now, Logger: log,
				Fetch: func(ctx context.Context, now time.Time) (*policy.Trust, time.Time, error) {
					c := fc
					c.Now = now
					t, err := tufrepo.Fetch(ctx, c)
					if err != nil {
						return nil, time.Time{}, err
					}
					until, err := admission.TimestampExpiry(fc.CacheDir)
					if err != nil {
						return nil, time.Time{}, err
					}
					return t, until, nil
				}}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			metrics := prometheus.NewRegistry()
			metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if metricsListen != "" {
				mln, err := net.Listen("tcp", metricsListen)
				if err != nil {
					ln.Close()
					return fmt.Errorf("listening on --metrics-listen %s: %w", metricsListen, err)
				}
				msrv := &http.Server{Handler: promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = msrv.Serve(mln) }()
				defer msrv.Close()
			}
			if addrFile != "" {
				if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
					ln.Close()
					return err
				}
			}
			reporter := &admission.CoordinatorReporter{Client: fc.Client}
			var reports admission.VerificationReporter
			if reportVerifications {
				reports = reporter
			}
			err = admission.Serve(ctx, admission.ServeOptions{
				Listener: ln, ConfigFile: configFile, CertFile: certFile, KeyFile: keyFile, Mode: admission.Mode(mode),
				Trust: trust, Registry: reg.registry(), RequireLog: requireLog,
				BreakGlass: reporter, Reports: reports, Metrics: metrics, Logger: log,
			})
			if errors.Is(err, admission.ErrConfig) {
				return usageErr("%w", err)
			}
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&listen, "listen", ":8443", "address to serve HTTPS on")
	fl.StringVar(&addrFile, "addr-file", "", "write the address actually listened on to this file (useful with port 0)")
	fl.StringVar(&certFile, "tls-cert", "", "serving certificate (PEM; re-read when it changes)")
	fl.StringVar(&keyFile, "tls-key", "", "serving certificate's private key (PEM)")
	fl.StringVar(&configFile, "config-file", "", "admission configuration: rules (namespaces -> gate), mode, breakGlass, cache")
	fl.StringVar(&pin, "trust-root", "", "root.json to verify the coordinator's TUF repository from (obtained out of band; needed on first start)")
	fl.StringVar(&cache, "cache", "", "TUF metadata cache (default under $XDG_CACHE_HOME/quorate); keep it on a volume so a restart while the coordinator is down still has the policy")
	fl.StringVar(&mode, "mode", "", "enforce or audit (default: the configuration's, else enforce)")
	fl.StringVar(&metricsListen, "metrics-listen", "", "also serve /metrics over plain HTTP on this address")
	fl.BoolVar(&requireLog, "require-log", false, "refuse approvals without a verifying transparency-log bundle")
	fl.BoolVar(&reportVerifications, "report-verifications", true, "report each image verification (not cache hits) to the coordinator, which counts them per gate (needs --token-file or --client-cert); =false to stop")
	fl.DurationVar(&refresh, "refresh", time.Minute, "how often to refresh the policy from the coordinator")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&reg.insecure, "insecure-registry", false, "allow plain HTTP to loopback registries (tests only; refused for any other registry)")
	cf.add(c)
	return c
}

// admissionLogger is a JSON slog logger on stderr at level.
func admissionLogger(a *app, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: l})), nil
}
