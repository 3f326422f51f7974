package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
)

// provenanceInput is how a request or attestation gets its provenance:
// a file (--provenance, or its older name --predicate), a capture from the CI
// environment (--provenance-auto), or a reference (--provenance-uri and
// --provenance-digest).
type provenanceInput struct {
	file, uri, digest string
	auto              bool
}

// resolve returns the provenance to put in the predicate of an approval of
// subjects, or nil when none was asked for. A file or a capture is parsed
// strictly (provenance.Parse), must be for subjects when it is a statement
// with subjects of its own, and is embedded as a bare predicate; the
// summary goes to standard error.
func (a *app) resolveProvenance(ctx context.Context, in provenanceInput, subjects []attest.Subject) (*attest.Provenance, error) {
	n := 0
	for _, set := range []bool{in.file != "", in.uri != "", in.auto} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("--provenance FILE, --provenance-auto and --provenance-uri exclude each other")
	}
	var data []byte
	switch {
	case in.digest != "" && in.uri == "":
		return nil, errors.New("--provenance-digest needs --provenance-uri")
	case in.uri != "":
		return provenanceFrom("", in.uri, in.digest)
	case in.auto:
		r, err := provenance.Capture(ctx, provenance.Options{Getenv: a.getenv, Now: a.now, Runner: provenance.ExecRunner(toolTimeout)})
		if err != nil {
			return nil, fmt.Errorf("--provenance-auto: capturing provenance: %w", err)
		}
		for _, w := range r.Warnings {
			a.errf("warning: %s\n", display.String(w))
		}
		if data, err = json.Marshal(r.Predicate); err != nil {
			return nil, err
		}
	case in.file != "":
		var err error
		if data, err = os.ReadFile(in.file); err != nil {
			return nil, fmt.Errorf("reading --provenance: %w", err)
		}
	default:
		return nil, nil
	}
	pv, p, err := provenance.ForApproval(data, subjects)
	if errors.Is(err, provenance.ErrTooLargeToEmbed) {
		return nil, fmt.Errorf("provenance: %w: publish it and reference it with --provenance-uri URI --provenance-digest sha256:HEX (verifiers then need verify --provenance FILE)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	a.errf("provenance:\n")
	a.printProvenanceLines(p.Summary())
	return pv, nil
}

// checkGateProvenance fails early when gate requires provenance that pv
// (resolved with supplied, for a referenced one) does not meet: the check
// the coordinator and every verifier make.
func checkGateProvenance(t *policy.Trust, gate string, pv *attest.Provenance, supplied []byte, subjects []attest.Subject) error {
	return approval.CheckGateProvenance(t, gate, pv, supplied, subjects)
}

// printProvenanceLines shows a provenance summary on standard error,
// escaped like subject names.
func (a *app) printProvenanceLines(s provenance.Summary) {
	writeProvenanceLines(a.stderr, "  ", s)
}

func writeProvenanceLines(w io.Writer, indent string, s provenance.Summary) {
	for _, l := range s.Lines() {
		fmt.Fprintf(w, "%s%-12s %s\n", indent, l.Label+":", display.String(l.Value))
	}
}

// provenanceView is what a request or a verdict shows of its provenance:
// the summary of embedded provenance, or the reference, or why it could not
// be read.
type provenanceView struct {
	Summary *provenance.Summary `json:"summary,omitempty"`
	URI     string              `json:"uri,omitempty"`
	Digest  string              `json:"digest,omitempty"` // sha256:HEX of the referenced document
	Problem string              `json:"problem,omitempty"`
}

// viewProvenance describes pv (nil when there is none); supplied is the
// referenced document, when the caller has it.
func viewProvenance(pv *attest.Provenance, supplied []byte) *provenanceView {
	if pv == nil {
		return nil
	}
	v := &provenanceView{URI: pv.URI}
	if d := pv.Digest["sha256"]; d != "" {
		v.Digest = "sha256:" + d
	}
	if pv.URI != "" && supplied == nil {
		return v
	}
	p, err := provenance.Resolve(pv, supplied, provenance.Limits{})
	if err != nil {
		v.Problem = err.Error()
		return v
	}
	s := p.Summary()
	v.Summary = &s
	return v
}

// write shows v on w under a "provenance" heading, escaped.
func (v *provenanceView) write(w io.Writer, label string) {
	if v == nil {
		fmt.Fprintf(w, "%s none\n", label)
		return
	}
	switch {
	case v.Summary != nil:
		fmt.Fprintf(w, "%s\n", label)
		writeProvenanceLines(w, "  ", *v.Summary)
		if v.URI != "" {
			fmt.Fprintf(w, "  %-12s %s (%s)\n", "document:", display.String(v.URI), display.String(v.Digest))
		}
	case v.Problem != "":
		fmt.Fprintf(w, "%s UNREADABLE: %s\n", label, display.String(v.Problem))
	default:
		fmt.Fprintf(w, "%s referenced, not shown: %s (%s); supply the file to see it\n", label, display.String(v.URI), display.String(v.Digest))
	}
}

// indentWriter prefixes every line written to it (each Write is one or
// more whole lines).
type indentWriter struct {
	w      io.Writer
	prefix string
}

func (w indentWriter) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(w.prefix + l)
		}
	}
	if _, err := io.WriteString(w.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
