package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quorate-dev/quorate/internal/cliconfig"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// This file holds what every command shares: the configuration file and
// environment filling unset flags (internal/cliconfig, one precedence rule),
// the --output validator, the check that input files are readable, and the
// typed usage errors (exit 2) for unknown subcommands and bad arguments.

// sourceFlag is a value given on the command line.
var sourceFlag = cliconfig.Source{Kind: "flag"}

// outputFormats are the values every --output flag accepts.
var outputFormats = []string{"text", "json"}

// checkOutput is the one --output validator.
func checkOutput(value string, from cliconfig.Source) error {
	for _, f := range outputFormats {
		if value == f {
			return nil
		}
	}
	where := "--output"
	if from.Kind == "env" || from.Kind == "context" {
		where = "--output (from " + from.String() + ")"
	}
	return usageErr("%s %q: want %s", where, value, strings.Join(outputFormats, " or "))
}

// keyCommands are the commands whose --key is the user's own signing key,
// which $QUORATE_KEY or the context's key fills. Elsewhere --key names a
// key to create, a public key file or a key to retire, and is never filled.
var keyCommands = map[string]bool{
	"quorate sign":           true,
	"quorate request create": true,
	"quorate request cancel": true,
	"quorate request list":   true, // --mine
	"quorate policy sign":    true,
	"quorate policy approve": true,
}

// trustOrCoordinator are the commands where --trust DIR and --coordinator
// URL are alternatives (offline, or through the coordinator): only the one
// from the higher-precedence source is filled, --trust on a tie.
var trustOrCoordinator = map[string]bool{
	"quorate verify":        true,
	"quorate policy retire": true,
	"quorate policy revoke": true,
}

// inputFlags name, per command, the flags that name files the command
// reads: a missing or unreadable one is a usage error (exit 2), before
// anything else runs.
var inputFlags = map[string][]string{
	"quorate verify":         {"attestation", "bundle", "artifact"},
	"quorate attest":         {"artifact", "predicate"},
	"quorate sign":           {"in", "artifact"},
	"quorate request create": {"artifact", "predicate"},
}

// cliState is what the root's persistent flags hold.
type cliState struct {
	configPath, context string
}

// setupCLI adds the persistent --config and --context flags, the version
// and config and status commands, and the shared checks to the command
// tree.
func (a *app) setupCLI(root *cobra.Command) {
	st := &cliState{}
	pf := root.PersistentFlags()
	pf.StringVar(&st.configPath, "config", "", "configuration file (default $QUORATE_CONFIG, else $XDG_CONFIG_HOME/quorate/config.yaml)")
	pf.StringVar(&st.context, "context", "", "context of the configuration file to use (default $QUORATE_CONTEXT, else its current-context)")
	root.AddCommand(a.versionCommand(), a.configCommand(st), a.statusCommand())
	root.Version = a.buildInfo().Version
	root.SetVersionTemplate(a.buildInfo().text())
	// A subcommand's own PersistentPreRun must not skip the root's.
	cobra.EnableTraverseRunHooks = true
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return a.prepare(cmd, st)
	}
	root.SetHelpCommand(helpCommand())
	typedUsage(root)
	documentSources(root)
}

// helpCommand is cobra's 'help [command]', except that an unknown topic
// is a usage error with suggestions rather than the root's help and 0.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err == nil && len(rest) > 0 {
				err = unknownSubcommand(cmd, rest)
			}
			if err != nil {
				return usageErr("%w", err)
			}
			return cmd.Help()
		},
	}
}

// documentSources appends to the help of every flag that the environment
// or a context may fill where they come from.
func documentSources(c *cobra.Command) {
	for _, sub := range c.Commands() {
		documentSources(sub)
	}
	if strings.HasPrefix(c.CommandPath(), "quorate config") {
		return
	}
	for _, s := range cliconfig.Settings {
		fl := c.Flags().Lookup(s.Flag)
		if fl == nil || (s.Flag == "key" && !keyCommands[c.CommandPath()]) {
			continue
		}
		env := "$" + s.Env[0]
		for _, sh := range s.Shadow {
			env = "$" + sh + " (the token itself), else " + env
		}
		fl.Usage += fmt.Sprintf(" (else %s, else the context's %s)", env, s.Flag)
	}
}

// typedUsage makes every argument error of the tree a usage error (exit
// 2): a command group given an unknown subcommand answers "unknown
// command" with cobra's suggestions instead of printing help and exiting 0.
func typedUsage(c *cobra.Command) {
	for _, sub := range c.Commands() {
		typedUsage(sub)
	}
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = unknownSubcommand
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		return
	}
	if c.Args != nil {
		orig := c.Args
		c.Args = func(c *cobra.Command, args []string) error {
			if err := orig(c, args); err != nil {
				return usageErr("%w (see '%s --help')", err, c.CommandPath())
			}
			return nil
		}
	}
}

// flagError makes a flag error a usage error; on a command group given an
// unknown subcommand (quorate keys generat --key …) it names the command,
// which is the actual mistake.
func flagError(c *cobra.Command, err error) error {
	if c.HasSubCommands() {
		if uerr := unknownSubcommand(c, c.Flags().Args()); uerr != nil {
			return uerr
		}
	}
	return usageErr("%w", err)
}

func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", strings.Join(s, `" or "`))
	}
	return usageErr("%s (see '%s --help')", msg, c.CommandPath())
}

// loadConfig reads the configuration file: --config, else
// $QUORATE_CONFIG, else the default path (where a missing file is empty;
// and, with creating, a missing file named explicitly too).
func (a *app) loadConfig(st *cliState, creating bool) (*cliconfig.File, error) {
	path, explicit := st.configPath, true
	if path == "" {
		path = a.getenv("QUORATE_CONFIG")
	}
	if path == "" {
		path, explicit = cliconfig.DefaultPath(a.getenv), false
	}
	f, err := cliconfig.Load(path, explicit && !creating)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	return f, nil
}

// selectConfig loads the configuration file and picks the context in use.
func (a *app) selectConfig(st *cliState) (*cliconfig.Resolved, error) {
	f, err := a.loadConfig(st, false)
	if err != nil {
		return nil, err
	}
	r, err := f.Select(st.context, a.getenv)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	return r, nil
}

// prepare runs before every command: it fills unset flags from the
// environment and the configuration, then checks --output and the input
// files.
func (a *app) prepare(cmd *cobra.Command, st *cliState) error {
	switch cmd.Name() {
	case "help", "version", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
		return nil
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return usageErr("%w", err)
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return usageErr("%w", err)
	}
	path := cmd.CommandPath()
	srcs := map[string]cliconfig.Source{}
	if !strings.HasPrefix(path, "quorate config") {
		r, err := a.selectConfig(st)
		if err != nil {
			return err
		}
		if srcs, err = r.Apply(cmd.Flags(), fillable(cmd, r)); err != nil {
			return usageErr("%w", err)
		}
	}
	// (An --output with an empty default, config set-context's, may stay empty.)
	if fl := cmd.Flags().Lookup("output"); fl != nil && (fl.DefValue != "" || fl.Value.String() != "") {
		if err := checkOutput(fl.Value.String(), srcs["output"]); err != nil {
			return err
		}
	}
	for _, name := range inputFlags[path] {
		if err := checkInputs(cmd.Flags(), name); err != nil {
			return err
		}
	}
	return nil
}

// fillable says which configured flags of cmd may be filled.
func fillable(cmd *cobra.Command, r *cliconfig.Resolved) func(string) bool {
	path := cmd.CommandPath()
	fs := cmd.Flags()
	rank := func(name string) int {
		fl := fs.Lookup(name)
		if fl == nil {
			return -1
		}
		if fl.Changed {
			return sourceFlag.Rank()
		}
		s, _ := cliconfig.Lookup(name)
		_, src, ok := r.Resolve(s)
		if !ok {
			return 0
		}
		return src.Rank()
	}
	return func(name string) bool {
		switch name {
		case "key":
			return keyCommands[path]
		case "trust":
			if trustOrCoordinator[path] {
				return rank("trust") >= rank("coordinator")
			}
		case "coordinator":
			if trustOrCoordinator[path] {
				return rank("coordinator") > rank("trust")
			}
		}
		return true
	}
}

// checkInputs refuses a flag naming a file that cannot be read.
func checkInputs(fs *pflag.FlagSet, name string) error {
	fl := fs.Lookup(name)
	if fl == nil {
		return nil
	}
	var files []string
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		files = sv.GetSlice()
	} else if v := fl.Value.String(); v != "" {
		files = []string{v}
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return usageErr("--%s: %w", name, err)
		}
		fi, err := f.Stat()
		f.Close()
		if err == nil && fi.IsDir() {
			return usageErr("--%s %s is a directory, not a file", name, p)
		}
	}
	return nil
}

// Errors under --output json: a command that fails before printing its
// result writes one object to stdout, besides the usual line on stderr,
// and exits with the same code:
//
//	{"error": {"code": "not_found", "message": "...", "exitCode": 1, "httpStatus": 404}}
//
// A command that has printed its result (a verdict that did not verify, a
// coordinator not ready) answered already: no error object follows it.

// errorBody is the "error" member of a JSON error.
type errorBody struct {
	// Code: a policy reason code (policy.Kind: revoked, expired, ...), a
	// ledger one (ledger.Code: fork, root_mismatch, proof, ...), else
	// the policy reason of a coordinator's refusal (revoked, retired,
	// not_in_policy, not_in_gate, bad_signature, expired), else the
	// coordinator's API error code (not_found, unauthorized, not_pending,
	// ...), else usage (exit 2), unreachable (no answer from the
	// coordinator), timeout, or failed.
	Code    string `json:"code"`
	Message string `json:"message"`
	// APICode is the coordinator's error code when Code is its reason
	// (unauthorized for revoked, ...).
	APICode    string `json:"apiCode,omitempty"`
	ExitCode   int    `json:"exitCode"`
	HTTPStatus int    `json:"httpStatus,omitempty"`
}

// errorCode classifies err for errorBody.Code.
func errorCode(err error, exit int) (code string, status int) {
	var ae *client.APIError
	if errors.As(err, &ae) {
		status = ae.Status
	}
	var op *net.OpError
	switch {
	case policy.CodeOf(err) != "":
		return policy.CodeOf(err), status
	case ledger.Code(err) != "": // log verify/proof: fork, root_mismatch, proof, ...
		return ledger.Code(err), status
	case ae != nil && ae.Reason != "":
		return ae.Reason, status
	case ae != nil && ae.Code != "":
		return ae.Code, status
	case errors.Is(err, errNotConfirmed): // sign answered no (terminal.go)
		return "not_confirmed", status
	case exit == exitUsage:
		return "usage", status
	case errors.As(err, &op):
		return "unreachable", status
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", status
	}
	return "failed", status
}

// apiCode is the coordinator's error code of err when code is not it.
func apiCode(err error, code string) string {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code != code {
		return ae.Code
	}
	return ""
}

// outputJSON reports whether cmd prints JSON: its --output is json (from
// the flag, the environment or the context, once they are applied).
func (a *app) outputJSON(cmd *cobra.Command) bool {
	if cmd == nil || cmd.CommandPath() == "quorate config set-context" { // its --output is a value to store
		return false
	}
	fl := cmd.Flags().Lookup("output")
	if fl == nil {
		return false
	}
	if fl.Changed || fl.Value.String() == "json" {
		return fl.Value.String() == "json"
	}
	return a.getenv("QUORATE_OUTPUT") == "json" // a usage error before the environment was applied
}

// jsonError writes err as a JSON error on stdout when cmd prints JSON and
// has not printed its result.
func (a *app) jsonError(cmd *cobra.Command, printed *bool, err error, exit int) {
	if err == nil || *printed || !a.outputJSON(cmd) {
		return
	}
	code, status := errorCode(err, exit)
	_ = writeJSON(a.stdout, struct {
		Error errorBody `json:"error"`
	}{errorBody{Code: code, Message: err.Error(), APICode: apiCode(err, code), ExitCode: exit, HTTPStatus: status}})
}

// watchStdout makes a.stdout note whether anything was written to it.
func (a *app) watchStdout() *bool {
	w := &watchedWriter{w: a.stdout}
	a.stdout = w
	return &w.written
}

type watchedWriter struct {
	w       io.Writer
	written bool
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		w.written = true
	}
	return w.w.Write(p)
}

// Flush flushes the writer underneath (the display escaper).
func (w *watchedWriter) Flush() error {
	if f, ok := w.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}
