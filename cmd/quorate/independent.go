package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
	"github.com/quorate-dev/quorate/signer/witnessing"
)

// policyWitness is `quorate policy witness add|remove|quorum|list`: the
// log's witnesses and their quorum, signed policy like any other change.
func (a *app) policyWitness() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Name the transparency log's witnesses and their quorum in the policy",
		Long: `Witnesses (c2sp.org/tlog-witness) cosign the coordinator's checkpoints only
when each one extends the last they saw, so a coordinator cannot show two
histories (a split view) without the witnesses refusing. Verifiers learn the
witnesses and how many must cosign from the signed policy; see
docs/runbooks/witnesses.md. Each change makes a new policy version: then run
'quorate policy sign'.`,
	}
	var dir string
	var exp time.Duration
	flags := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVar(&dir, "trust", "", "trust directory")
		c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
		return c
	}
	var name, vkey string
	add := flags(&cobra.Command{
		Use:   "add --trust DIR --vkey VKEY [--name NAME]",
		Short: "Add a witness by its verifier key (name+keyid+base64 key, as the witness prints it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if vkey == "" {
				return usageErr("--vkey VKEY is required")
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.AddWitness(name, vkey, exp) })
		},
	})
	add.Flags().StringVar(&name, "name", "", "witness name (must be the vkey's; default: the vkey's)")
	add.Flags().StringVar(&vkey, "vkey", "", "witness verifier key")
	remove := flags(&cobra.Command{
		Use:   "remove --trust DIR --name NAME",
		Short: "Remove a witness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErr("--name NAME is required")
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.RemoveWitness(name, exp) })
		},
	})
	remove.Flags().StringVar(&name, "name", "", "witness name")
	quorum := flags(&cobra.Command{
		Use:   "quorum N --trust DIR",
		Short: "Set how many of the witnesses must cosign a checkpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseQuorum(args[0])
			if err != nil {
				return err
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.SetWitnessQuorum(n, exp) })
		},
	})
	var output string
	list := &cobra.Command{
		Use:   "list --trust DIR",
		Short: "List the policy's witnesses and quorum",
		Long: `List the witnesses of the policy in DIR (the latest version, signed or not)
and their quorum. With --output json: {"quorum", "witnesses": [{"name",
"vkey"}]} (quorum 0 and no witnesses when the policy names none).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.openDraftForReading(dir)
			if err != nil {
				return err
			}
			w, err := policy.WitnessesOf(d.Targets)
			if err != nil {
				return err
			}
			if output == "json" {
				out := witnessListJSON{Quorum: w.Quorum, Witnesses: []witnessJSON{}}
				for _, e := range w.Witnesses {
					out.Witnesses = append(out.Witnesses, witnessJSON{Name: e.Name, VKey: e.VKey})
				}
				return writeJSON(a.stdout, out)
			}
			if len(w.Witnesses) == 0 {
				fmt.Fprintln(a.stdout, "no witnesses")
				return nil
			}
			fmt.Fprintf(a.stdout, "quorum %d of %d\n", w.Quorum, len(w.Witnesses))
			for _, e := range w.Witnesses {
				fmt.Fprintf(a.stdout, "  %s\n", e.VKey)
			}
			return nil
		},
	}
	list.Flags().StringVar(&dir, "trust", "", "trust directory")
	list.Flags().StringVar(&output, "output", "text", "text or json")
	cmd.AddCommand(add, remove, quorum, list)
	return cmd
}

// witnessListJSON is policy witness list --output json.
type witnessListJSON struct {
	Quorum    int           `json:"quorum"`
	Witnesses []witnessJSON `json:"witnesses"`
}

type witnessJSON struct {
	Name string `json:"name"`
	VKey string `json:"vkey"`
}

// policyTSA is `quorate policy tsa add|remove|quorum|list`: the trusted
// RFC 3161 timestamp authorities.
func (a *app) policyTSA() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tsa",
		Short: "Name the trusted RFC 3161 timestamp authorities and their quorum in the policy",
		Long: `Timestamp authorities give the coordinator's checkpoints a time that is not the
coordinator's clock (docs/time.md). A TSA is trusted through its certificates:
give the chain up to its self-signed root (PEM files). Each change makes a
new policy version: then run 'quorate policy sign'.`,
	}
	var dir, name string
	var certs []string
	var exp time.Duration
	flags := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVar(&dir, "trust", "", "trust directory")
		c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
		return c
	}
	add := flags(&cobra.Command{
		Use:   "add --trust DIR --name NAME --cert FILE...",
		Short: "Trust a timestamp authority by its certificate chain (PEM)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || len(certs) == 0 {
				return usageErr("--name NAME and at least one --cert FILE are required")
			}
			pems := make([]string, 0, len(certs))
			for _, f := range certs {
				data, err := os.ReadFile(f)
				if err != nil {
					return usageErr("--cert: %w", err)
				}
				pems = append(pems, string(data))
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.AddTSA(name, pems, exp) })
		},
	})
	add.Flags().StringVar(&name, "name", "", "a name for the TSA")
	add.Flags().StringArrayVar(&certs, "cert", nil, "PEM certificate file (repeat, or one file with the chain)")
	remove := flags(&cobra.Command{
		Use:   "remove --trust DIR --name NAME",
		Short: "Stop trusting a timestamp authority",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErr("--name NAME is required")
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.RemoveTSA(name, exp) })
		},
	})
	remove.Flags().StringVar(&name, "name", "", "TSA name")
	quorum := flags(&cobra.Command{
		Use:   "quorum N --trust DIR",
		Short: "Set how many distinct trusted TSAs must agree",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseQuorum(args[0])
			if err != nil {
				return err
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.SetTSAQuorum(n, exp) })
		},
	})
	var output string
	list := &cobra.Command{
		Use:   "list --trust DIR",
		Short: "List the trusted timestamp authorities and quorum",
		Long: `List the timestamp authorities the policy in DIR trusts (the latest version,
signed or not) and their quorum. With --output json: {"quorum",
"authorities": [{"name", "certificates"}]}, certificates being the number
of PEM certificates kept for the authority.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.openDraftForReading(dir)
			if err != nil {
				return err
			}
			t, err := policy.TSAsOf(d.Targets)
			if err != nil {
				return err
			}
			if output == "json" {
				out := tsaListJSON{Quorum: t.Quorum, Authorities: []tsaJSON{}}
				for _, e := range t.Authorities {
					out.Authorities = append(out.Authorities, tsaJSON{Name: e.Name, Certificates: len(e.Certificates)})
				}
				return writeJSON(a.stdout, out)
			}
			if len(t.Authorities) == 0 {
				fmt.Fprintln(a.stdout, "no timestamp authorities")
				return nil
			}
			fmt.Fprintf(a.stdout, "quorum %d of %d\n", t.Quorum, len(t.Authorities))
			for _, e := range t.Authorities {
				fmt.Fprintf(a.stdout, "  %s (%d certificate file(s))\n", e.Name, len(e.Certificates))
			}
			return nil
		},
	}
	list.Flags().StringVar(&dir, "trust", "", "trust directory")
	list.Flags().StringVar(&output, "output", "text", "text or json")
	cmd.AddCommand(add, remove, quorum, list)
	return cmd
}

// tsaListJSON is policy tsa list --output json.
type tsaListJSON struct {
	Quorum      int       `json:"quorum"`
	Authorities []tsaJSON `json:"authorities"`
}

type tsaJSON struct {
	Name         string `json:"name"`
	Certificates int    `json:"certificates"`
}

func (a *app) openDraftForReading(dir string) (*author.Draft, error) {
	if dir == "" {
		return nil, usageErr("--trust DIR is required")
	}
	d, err := author.OpenDraft(dir, a.now())
	if err != nil {
		return nil, usageErr("%w", err)
	}
	return d, nil
}

func parseQuorum(s string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s || n < 1 {
		return 0, usageErr("quorum %q: want a whole number of at least 1", s)
	}
	return n, nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// independentFlags are serve's flags for witnesses and timestamp
// authorities.
type independentFlags struct {
	witnessURLs    []string
	tsas           []string
	witnessRetry   time.Duration
	witnessTimeout time.Duration
}

func (f *independentFlags) add(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.witnessURLs, "witness-url", nil, "NAME=URL: where to submit checkpoints to the policy's witness NAME (c2sp.org/tlog-witness prefix; default https://NAME) (repeat)")
	fl.StringArrayVar(&f.tsas, "tsa", nil, "RFC 3161 timestamp authority URL to timestamp checkpoints with (repeat); the policy's TSAs ('quorate policy tsa') check the tokens")
	fl.DurationVar(&f.witnessRetry, "witness-retry", time.Second, "first delay before asking a witness or TSA that did not answer again (doubles up to 1m)")
	fl.DurationVar(&f.witnessTimeout, "witness-timeout", 30*time.Second, "time limit of one submission to a witness or TSA")
}

// envTestClockOffset shifts the coordinator's clock, for tests only (a
// coordinator whose clock was set back; see test/e2e).
const envTestClockOffset = "QUORATE_TEST_CLOCK_OFFSET"

// applyTestClock shifts a.now by $QUORATE_TEST_CLOCK_OFFSET (a Go
// duration) when set.
func (a *app) applyTestClock() error {
	v := a.getenv(envTestClockOffset)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return usageErr("$%s: %w", envTestClockOffset, err)
	}
	now := a.now
	a.now = func() time.Time { return now().Add(d) }
	return nil
}

// openWitnessing sets up the submission of checkpoints to the policy's
// witnesses and to the --tsa authorities, and hands it to the ledger. It
// returns nil when there is nobody to ask.
func (a *app) openWitnessing(f *independentFlags, trust *policy.Trust, ledgerSrv *ledgerapi.Server, store signer.Store, stateDir string, reg prometheus.Registerer, log *zap.Logger) (*witnessing.Witnessing, error) {
	q, err := trust.Witnesses()
	if err != nil && !errors.Is(err, policy.ErrNoWitnesses) {
		return nil, err
	}
	cfg := witnessing.Config{Dir: stateDir, Logger: log, Registerer: reg, Retry: f.witnessRetry, Timeout: f.witnessTimeout}
	if shared, ok := store.(witnessing.SharedEvidence); ok {
		cfg.Shared = shared // PostgreSQL: replicas share complete evidence
	}
	urls := map[string]string{}
	for _, kv := range f.witnessURLs {
		name, u, ok := strings.Cut(kv, "=")
		if !ok || name == "" || u == "" {
			return nil, usageErr("--witness-url %q: want NAME=URL", kv)
		}
		urls[name] = u
	}
	hc := &http.Client{Timeout: f.witnessTimeout}
	if q != nil {
		lk, err := trust.LogKey()
		if err != nil {
			return nil, usageErr("the policy names witnesses but no log key: %w", err)
		}
		if lk.Key.Scheme() != keys.SchemeEd25519 {
			return nil, usageErr("the policy names witnesses, but its log key %s is %s: witnesses verify Ed25519 log keys only (quorate policy log-key with an Ed25519 key)", keys.Short(lk.Key.ID()), lk.Key.Scheme())
		}
		if ledgerSrv == nil {
			return nil, usageErr("the policy names witnesses: give the log key with --log-key")
		}
		for _, v := range q.Witnesses() {
			u, ok := urls[v.Name()]
			if !ok {
				u = "https://" + v.Name()
			}
			delete(urls, v.Name())
			c, err := witness.NewClient(witness.ClientConfig{Witness: v, URL: u, HTTPClient: hc})
			if err != nil {
				return nil, usageErr("witness %s: %w", v.Name(), err)
			}
			cfg.Witnesses = append(cfg.Witnesses, c)
		}
		cfg.WitnessQuorum = q.N()
		ls, ok := store.(ledgerapi.Store)
		if !ok {
			return nil, errors.New("the store keeps no ledger")
		}
		cfg.Prover = witness.ProverFunc(func(ctx context.Context, o, n int64) (tlog.TreeProof, error) {
			return ledger.ConsistencyProof(ctx, ls.Ledger(), o, n)
		})
	}
	for name := range urls {
		return nil, usageErr("--witness-url names %q, which is not a witness of the policy", name)
	}
	if len(f.tsas) > 0 {
		if ledgerSrv == nil {
			return nil, usageErr("--tsa timestamps log checkpoints: give the log key with --log-key")
		}
		tr, err := trust.TSAs()
		switch {
		case errors.Is(err, policy.ErrNoTSAs):
			log.Warn("--tsa given but the policy names no timestamp authorities: tokens are not checked, and verifiers will not count them")
		case err != nil:
			return nil, err
		default:
			cfg.TSAQuorum, cfg.TSATrust = tr.Quorum(), tr
		}
		for _, u := range f.tsas {
			opts := []timestamp.ClientOption{timestamp.WithHTTPClient(hc)}
			if tr != nil {
				opts = append(opts, timestamp.WithTrust(tr))
			}
			c, err := timestamp.NewClient(u, opts...)
			if err != nil {
				return nil, usageErr("--tsa %s: %w", u, err)
			}
			cfg.TSAs = append(cfg.TSAs, c)
		}
	}
	if len(cfg.Witnesses)+len(cfg.TSAs) == 0 {
		return nil, nil
	}
	w, err := witnessing.New(cfg)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	ledgerSrv.SetEvidence(w)
	return w, nil
}
