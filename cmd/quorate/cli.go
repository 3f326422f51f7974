package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quorate-dev/quorate/internal/cliconfig"
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
