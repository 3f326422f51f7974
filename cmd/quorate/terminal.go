package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/quorate-dev/quorate/internal/display"
)

// This file holds what the CLI does only for a person at a terminal:
// asking before signing, and asking for a token's PIN with echo off.
// Input that is not a terminal (CI, a pipe) is never asked anything.

// isTerminal reports whether v is an *os.File open on a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// interactive reports whether a person is at a terminal: stdin and stderr
// (where questions are printed) are both terminals.
func (a *app) interactive() bool { return a.stderrTTY && isTerminal(a.stdin) }

// errNotConfirmed is the answer to a question that was not yes.
var errNotConfirmed = errors.New("not confirmed")

// confirm prints question and " [y/N] " on stderr and reads one line from
// stdin: y or yes (any case) is yes; anything else, or no line at all, is
// no.
func (a *app) confirm(question string) (bool, error) {
	a.errf("%s [y/N] ", question)
	line, err := readLine(a.stdin)
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		a.errf("\n")
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// readLine reads up to a newline one byte at a time, so that nothing after
// it is consumed from a shared stdin. It reads at most 1 KiB.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for b.Len() < 1024 {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(c[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
	return b.String(), nil
}

// askPIN asks for a token's PIN on the terminal with echo off (for
// hsm.Options.AskPIN; set only when a person is at a terminal). The PIN is
// never printed.
func (a *app) askPIN(_ context.Context, token string) (string, error) {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("stdin is not a terminal")
	}
	a.errf("PIN for token \"%s\": ", display.String(token))
	pin, err := term.ReadPassword(int(f.Fd()))
	a.errf("\n")
	if err != nil {
		return "", fmt.Errorf("reading the PIN: %w", err)
	}
	return string(pin), nil
}
