package witness

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Quorum is a set of named witnesses and how many of them must cosign a
// checkpoint (N of M). It is immutable and safe for concurrent use.
type Quorum struct {
	witnesses []*Verifier
	n         int
}

// NewQuorum returns the quorum of n among witnesses. It refuses n < 1, n
// greater than the number of witnesses, and two witnesses with the same name
// or the same key (an Ed25519 cosignature does not commit to the witness
// name, so one key under two names could count twice).
func NewQuorum(n int, witnesses ...*Verifier) (*Quorum, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: quorum %d, want at least 1", ErrQuorum, n)
	}
	if n > len(witnesses) {
		return nil, fmt.Errorf("%w: quorum %d of %d witnesses", ErrQuorum, n, len(witnesses))
	}
	names := map[string]bool{}
	keys := map[string]string{}
	for _, w := range witnesses {
		if w == nil {
			return nil, fmt.Errorf("%w: nil witness", ErrQuorum)
		}
		if names[w.name] {
			return nil, fmt.Errorf("%w: witness %s listed twice", ErrQuorum, w.name)
		}
		names[w.name] = true
		if other, ok := keys[string(w.key)]; ok {
			return nil, fmt.Errorf("%w: witnesses %s and %s have the same key", ErrQuorum, other, w.name)
		}
		keys[string(w.key)] = w.name
	}
	return &Quorum{witnesses: slices.Clone(witnesses), n: n}, nil
}

// N returns how many cosignatures the quorum needs.
func (q *Quorum) N() int { return q.n }

// Witnesses returns the witnesses, in the order given.
func (q *Quorum) Witnesses() []*Verifier { return slices.Clone(q.witnesses) }

// Result is what a cosigned checkpoint proves against a [Quorum].
type Result struct {
	// Cosignatures holds one valid cosignature per witness of the quorum
	// that signed, in the quorum's witness order.
	Cosignatures []Cosignature
	// Missing names the witnesses of the quorum with no cosignature.
	Missing []string
	// Need is the quorum size; Met reports len(Cosignatures) >= Need.
	Need int
	Met  bool
	// WitnessedBy is the witnessed time bound when Met (zero otherwise):
	// see [Quorum.Verify].
	WitnessedBy time.Time
}

// Signed returns the names of the witnesses that cosigned.
func (r *Result) Signed() []string {
	out := make([]string, len(r.Cosignatures))
	for i, c := range r.Cosignatures {
		out[i] = c.Witness
	}
	return out
}

// Err returns nil when the quorum is met, and otherwise an error wrapping
// [ErrNoQuorum] that says who signed and who did not.
func (r *Result) Err() error {
	if r.Met {
		return nil
	}
	signed := "none"
	if len(r.Cosignatures) > 0 {
		signed = strings.Join(r.Signed(), ", ")
	}
	return fmt.Errorf("%w: %d of %d needed (cosigned by: %s; missing: %s)", ErrNoQuorum, len(r.Cosignatures), r.Need, signed, strings.Join(r.Missing, ", "))
}

// Verify checks the cosignatures on a signed checkpoint note against the
// quorum. It checks only cosignatures: the log's own signature is for
// [github.com/quorate-dev/quorate/ledger.OpenCheckpoint]. Signature lines by
// keys outside the quorum are ignored (a foreign cosignature counts for
// nothing); a line with the name and key ID of a quorum witness that does
// not verify on this checkpoint text fails the whole note with
// [ErrBadCosignature] (a forged or transplanted cosignature is never
// skipped silently). Each witness counts once.
//
// # Witnessed time
//
// A cosignature/v1 timestamp T says: at T (to the second), the witness had
// verified this checkpoint as the largest consistent tree of the log it had
// seen — so the checkpoint, and every entry it covers, existed by then,
// whatever the log's own clock claims. WitnessedBy is the earliest time by
// which the quorum vouches for that: sort the valid cosignatures' timestamps
// and take the N-th smallest (N the quorum size), T_N; then at least N
// witnesses each attest existence at or before T_N, so if fewer than N of
// them collude with the log, at least one honest witness does. No earlier
// time has that property: only N-1 witnesses attest anything before T_N.
// Timestamps are whole seconds of a signing time that was truncated, so
// WitnessedBy is the last nanosecond of that second, T_N + 1s - 1ns: the
// checkpoint existed at or before WitnessedBy. A timestamp in the future
// (a witness clock ahead) only makes the bound later, never earlier, so it
// is not refused. For an entry, use the earliest cosigned checkpoint that
// includes it; a later one gives a valid but looser bound.
func (q *Quorum) Verify(signed []byte) (*Result, error) {
	text, sigs, err := splitNote(signed)
	if err != nil {
		return nil, err
	}
	if _, err := parseHeader(text); err != nil {
		return nil, err
	}
	lines, err := parseSigLines(sigs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	r := &Result{Need: q.n}
	for _, w := range q.witnesses {
		c, err := verifyCosignatures(w, text, lines)
		if err != nil {
			return nil, err
		}
		if c == nil {
			r.Missing = append(r.Missing, w.name)
			continue
		}
		r.Cosignatures = append(r.Cosignatures, *c)
	}
	r.Met = len(r.Cosignatures) >= q.n
	if r.Met {
		r.WitnessedBy = witnessedBy(r.Cosignatures, q.n)
	}
	return r, nil
}

// witnessedBy is the last nanosecond of the second of the n-th smallest
// cosignature timestamp (see [Quorum.Verify]).
func witnessedBy(cs []Cosignature, n int) time.Time {
	ts := make([]time.Time, len(cs))
	for i, c := range cs {
		ts[i] = c.Time
	}
	slices.SortFunc(ts, time.Time.Compare)
	return ts[n-1].Add(time.Second - time.Nanosecond)
}

// AddCosignatures returns the signed note with the cosignature lines
// appended, skipping any line the note already has.
func AddCosignatures(signed []byte, cs ...Cosignature) []byte {
	out := bytes.Clone(signed)
	for _, c := range cs {
		if !bytes.Contains(out, []byte("\n"+c.Line)) {
			out = append(out, c.Line...)
		}
	}
	return out
}
