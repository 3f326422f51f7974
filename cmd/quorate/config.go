package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/cliconfig"
)

func (a *app) configCommand(st *cliState) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "View and edit the configuration file's contexts",
		Long: `The configuration file ($XDG_CONFIG_HOME/quorate/config.yaml, or --config
FILE, or $QUORATE_CONFIG) holds named contexts: a coordinator URL, its CA
certificate, a client certificate and key, a read-token file, your key URI, a
trust directory and an output format. One is current.

A value is taken from, in order: the command-line flag; the environment
($QUORATE_COORDINATOR, $QUORATE_CACERT, $QUORATE_CLIENT_CERT,
$QUORATE_CLIENT_KEY, $QUORATE_TOKEN or $QUORATE_TOKEN_FILE, $QUORATE_KEY,
$QUORATE_TRUST, $QUORATE_OUTPUT); the context (--context NAME, else
$QUORATE_CONTEXT, else the current context); the built-in default.
See docs/cli.md.`,
	}
	c.AddCommand(a.configViewCommand(st), a.configUseContextCommand(st), a.configSetContextCommand(st))
	return c
}

func (a *app) configViewCommand(st *cliState) *cobra.Command {
	output := "text"
	c := &cobra.Command{
		Use:   "view [--output json]",
		Short: "Print the configuration file, the context in use and each setting's effective value and source",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			r, err := a.selectConfig(st)
			if err != nil {
				return err
			}
			f := r.File.Redacted(hsm.Redact) // no inline PIN on the screen
			type effective struct {
				Value  string `json:"value"`
				Source string `json:"source"`
			}
			eff := map[string]effective{}
			for _, s := range cliconfig.Settings {
				v, src, _ := r.Resolve(s)
				eff[s.Flag] = effective{Value: hsm.Redact(v), Source: src.String()}
			}
			if output == "json" {
				return writeJSON(a.stdout, struct {
					Path      string               `json:"path"`
					Context   string               `json:"context,omitempty"`
					File      *cliconfig.File      `json:"file"`
					Effective map[string]effective `json:"effective"`
				}{f.Path, r.ContextName, f, eff})
			}
			data, err := f.Marshal()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "# file: %s\n", f.Path)
			if r.ContextName != "" {
				fmt.Fprintf(a.stdout, "# context in use: %s\n", r.ContextName)
			}
			if s := strings.TrimSpace(string(data)); s != "{}" {
				fmt.Fprintln(a.stdout, s)
			}
			fmt.Fprintln(a.stdout, "# effective values when no flag is given:")
			for _, s := range cliconfig.Settings {
				e := eff[s.Flag]
				v := e.Value
				if v == "" {
					v = "(unset)"
				}
				fmt.Fprintf(a.stdout, "#   %-12s %s  (%s)\n", s.Flag, v, e.Source)
			}
			return nil
		},
	}
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

func (a *app) configUseContextCommand(st *cliState) *cobra.Command {
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make NAME the current context",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			f, err := a.loadConfig(st, false)
			if err != nil {
				return err
			}
			if f.Contexts[args[0]] == nil {
				return usageErr("context %q: %w (have: %s)", args[0], cliconfig.ErrNoContext, strings.Join(f.Names(), ", "))
			}
			f.CurrentContext = args[0]
			if err := f.Save(); err != nil {
				return err
			}
			a.errf("current context: %s (%s)\n", args[0], f.Path)
			return nil
		},
	}
}

func (a *app) configSetContextCommand(st *cliState) *cobra.Command {
	vals := map[string]*string{}
	var use bool
	c := &cobra.Command{
		Use:   "set-context NAME [--coordinator URL] [--ca-cert F] [--client-cert F --client-key F] [--token-file F] [--key URI] [--trust DIR] [--output text|json] [--use]",
		Short: "Create or change context NAME (only the flags given change; an empty value removes a field)",
		Long: `Create or change context NAME in the configuration file, written atomically
with mode 0600. Only the flags given change; giving a flag an empty value
removes that field. Relative file paths are stored as absolute paths. With
--use, NAME also becomes the current context (the first context created
becomes current anyway).`,
		Example: "  quorate config set-context prod --coordinator https://quorate.example.com:8443 --ca-cert ca.pem --key pkcs11:token=ops;object=release --use",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := a.loadConfig(st, true)
			if err != nil {
				return err
			}
			if f.Contexts == nil {
				f.Contexts = map[string]*cliconfig.Context{}
			}
			ctx := f.Contexts[args[0]]
			if ctx == nil {
				ctx = &cliconfig.Context{}
				f.Contexts[args[0]] = ctx
			}
			for _, s := range cliconfig.Settings {
				if !cmd.Flags().Changed(s.Flag) {
					continue
				}
				v := *vals[s.Flag]
				if s.Path && v != "" && !strings.HasPrefix(v, "~/") {
					if v, err = filepath.Abs(v); err != nil {
						return err
					}
				}
				if s.Flag == "key" && hsm.Redact(v) != v {
					a.errf("warning: the key URI holds a secret inline; prefer pin-source=file:... (the file is mode 0600)\n")
				}
				if err := ctx.SetField(s.Flag, v); err != nil {
					return err
				}
			}
			if use || f.CurrentContext == "" {
				f.CurrentContext = args[0]
			}
			if err := f.Save(); err != nil {
				return err
			}
			a.errf("context %s saved in %s (current: %s)\n", args[0], f.Path, f.CurrentContext)
			return nil
		},
	}
	help := map[string]string{
		"coordinator": "coordinator URL", "ca-cert": "CA certificate (PEM) for the coordinator's TLS certificate",
		"client-cert": "client certificate for mutual TLS", "client-key": "client certificate key for mutual TLS",
		"token-file": "file holding the bearer token for reads", "key": "your signing key URI",
		"trust": "trust directory", "output": "output format: text or json",
	}
	for _, s := range cliconfig.Settings {
		vals[s.Flag] = c.Flags().String(s.Flag, "", help[s.Flag])
	}
	c.Flags().BoolVar(&use, "use", false, "also make it the current context")
	return c
}
