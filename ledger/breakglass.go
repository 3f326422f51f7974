package ledger

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quorate-dev/quorate/attest"
)

// MaxBreakGlassImages bounds the image digests an admission.break_glass
// entry names (detail keys image.0 … image.15); "images" carries the total
// the webhook reported.
const MaxBreakGlassImages = 16

// Detail keys of an admission.break_glass entry. gate and reporter are
// required; the others are present when known.
const (
	BreakGlassGate          = "gate"          // the gate the workload's namespace maps to (identifier rule)
	BreakGlassReporter      = "reporter"      // who reported: "cert:" and the client certificate subject, or "read-token" (free text)
	BreakGlassNamespace     = "namespace"     // identifier rule
	BreakGlassKind          = "kind"          // identifier rule
	BreakGlassName          = "name"          // identifier rule
	BreakGlassUser          = "user"          // the requesting Kubernetes user (free text)
	BreakGlassJustification = "justification" // the annotation's value (free text)
	BreakGlassImages        = "images"        // decimal count of the images reported
	BreakGlassImagePrefix   = "image."        // image.N: the N-th digest, ALG:HEX lowercase
)

// BreakGlassDetailKeys lists the fixed detail keys of an
// admission.break_glass entry (besides image.N).
func BreakGlassDetailKeys() []string {
	return []string{BreakGlassGate, BreakGlassReporter, BreakGlassNamespace, BreakGlassKind, BreakGlassName,
		BreakGlassUser, BreakGlassJustification, BreakGlassImages}
}

// checkBreakGlassDetail applies the strict rules of an
// admission.break_glass entry's detail: known keys only, gate and
// reporter present, identifiers and free text by the attest text rules,
// image digests canonical.
func checkBreakGlassDetail(d map[string]string) error {
	for _, k := range []string{BreakGlassGate, BreakGlassReporter} {
		if d[k] == "" {
			return fmt.Errorf("%s event: detail %s is required", AdmissionBreakGlass, k)
		}
	}
	for k, v := range d {
		var err error
		switch k {
		case BreakGlassGate, BreakGlassNamespace, BreakGlassKind, BreakGlassName:
			err = attest.CheckIdentifier(k, v)
		case BreakGlassReporter, BreakGlassUser, BreakGlassJustification:
			err = attest.CheckFreeText(k, v)
		case BreakGlassImages:
			if n, perr := strconv.Atoi(v); perr != nil || n < 0 || strconv.Itoa(n) != v {
				err = fmt.Errorf("%q is not a count", v)
			}
		default:
			n, ok := strings.CutPrefix(k, BreakGlassImagePrefix)
			i, perr := strconv.Atoi(n)
			if !ok || perr != nil || i < 0 || i >= MaxBreakGlassImages || strconv.Itoa(i) != n {
				return fmt.Errorf("%s event: detail key %q is not allowed", AdmissionBreakGlass, k)
			}
			dg, perr := attest.ParseDigest(v)
			if perr != nil {
				err = perr
			} else if dg.String() != v {
				err = fmt.Errorf("digest %q is not in canonical form", v)
			}
		}
		if err != nil {
			return fmt.Errorf("%s event: detail %s: %w", AdmissionBreakGlass, k, err)
		}
	}
	return nil
}
