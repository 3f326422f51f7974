// Command quorate is the CLI and service for multi-party release signing:
// keys, policy, attest, sign and verify offline; serve runs the coordinator
// that request and log talk to; migrate, provenance, webhook and the
// configuration commands complete it (see docs/cli.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/display"
)

// Exit codes.
const (
	exitOK          = 0
	exitNotVerified = 1 // verification ran and failed, or a command failed
	exitUsage       = 2 // bad flags or unreadable trust material
)

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// app holds the explicit dependencies of every command.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	getenv         func(string) string
	logger         *zap.Logger
	registry       *hsm.Registry
	// stderrTTY is whether stderr is a terminal (see interactive).
	stderrTTY bool
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	// Everything printed passes through display.NewWriter: no control,
	// bidirectional or invisible character from the network or a file
	// reaches a terminal raw, whatever a command forgot to escape.
	a := &app{stdin: stdin, stdout: display.NewWriter(stdout), stderr: display.NewWriter(stderr), now: time.Now, getenv: getenv, logger: zap.NewNop(), stderrTTY: isTerminal(stderr)}
	opts := hsm.Options{Logger: a.logger, Getenv: getenv, Warn: func(msg string) { a.errf("warning: %s\n", msg) }}
	if a.interactive() { // a PKCS#11 PIN not given is asked for (terminal.go)
		opts.AskPIN = a.askPIN
	}
	a.registry = hsm.NewRegistry(opts)
	filekey.Register(a.registry)
	registerBackends(a.registry)
	return a
}

func (a *app) errf(format string, args ...any) {
	fmt.Fprintf(a.stderr, format, args...)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "quorate",
		Short: "Multi-party release signing with HSM-backed keys",
		Long: `quorate signs releases with several parties, each holding its own key in an
HSM, a cloud KMS or (for development) a file, under a signed TUF-style policy.

Roles (originator, integrator, operator, or any other) each have keys and a
threshold; gates name which roles a release needs. Each party signs the same
DSSE envelope over an in-toto Statement; anyone can verify the result offline
with 'quorate verify' against the trust directory.

Exit codes: 0 success / verified, 1 failure / refused / not verified, 2 usage
error or unreadable input (a missing file, untrusted trust material).

Flags such as --coordinator, --trust, --key and --output take their defaults
from the environment (QUORATE_COORDINATOR, ...) and then from the context of
the configuration file: see 'quorate config --help' and docs/cli.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(a.keysCommand(), a.policyCommand(), a.attestCommand(), a.signCommand(), a.verifyCommand(), a.serveCommand(), a.requestCommand(), a.logCommand(), a.migrateCommand(), a.provenanceCommand())
	root.AddCommand(a.webhookCommand())
	root.AddCommand(a.attachCommand(), a.admissionCommand())
	root.AddCommand(a.eventsCommand())
	a.setupCLI(root) // config, version, status; typed usage errors (cli.go)
	return root
}

// run executes the CLI and returns the process exit code.
func (a *app) run(ctx context.Context, args []string) int {
	defer a.flush()
	printed := a.watchStdout() // for errors under --output json (cli.go)
	cmd := a.rootCommand()
	cmd.SetArgs(args)
	cmd.SetIn(a.stdin)
	cmd.SetOut(a.stdout)
	cmd.SetErr(a.stderr)
	cmd.SetFlagErrorFunc(flagError)
	ran, err := cmd.ExecuteContextC(ctx)
	if cerr := a.registry.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil {
		return exitOK
	}
	code := exitNotVerified
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	a.errf("quorate: %v\n", err)
	a.jsonError(ran, printed, err, code)
	return code
}

// flush writes what the output escapers still hold.
func (a *app) flush() {
	for _, w := range []io.Writer{a.stdout, a.stderr} {
		if f, ok := w.(interface{ Flush() error }); ok {
			_ = f.Flush()
		}
	}
}

func main() {
	a := newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	os.Exit(a.run(context.Background(), os.Args[1:]))
}
