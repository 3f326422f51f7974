package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/witness"
)

// Kinds of failure (and warning) about independent time.
var (
	// ErrNotWitnessed: the ledger bundle's checkpoint is not cosigned by
	// the quorum of the policy's witnesses (a warning, or a failure with
	// [RequireWitnesses]).
	ErrNotWitnessed = &Kind{"not_witnessed", "checkpoint not cosigned by a quorum of the policy's witnesses"}
	// ErrNotTimestamped: the ledger bundle's checkpoint is not timestamped
	// by the quorum of the policy's TSAs (a warning, or a failure with
	// [RequireTimestamps]).
	ErrNotTimestamped = &Kind{"not_timestamped", "checkpoint not timestamped by a quorum of the policy's TSAs"}
)

// RequireWitnesses makes witness cosignatures mandatory: the verdict fails
// unless a ledger bundle ([WithLedgerBundle]) verifies and its checkpoint
// carries valid cosignatures by the quorum of the witnesses the policy
// names. It also changes what "logged before a revocation" means: the time
// of each signature is no longer the coordinator's logged time but the
// earliest trusted independent bound — the witnessed bound of the bundle's
// checkpoint, or the TSA time when the policy names TSAs and that is
// earlier ([timestamp.Earliest] with [timestamp.IndependentRule]). A
// coordinator that back-dates an entry cannot make it older than its
// witnessed checkpoint. See docs/time.md.
func RequireWitnesses() VerifyOption {
	return func(o *verifyOptions) error {
		o.requireWitnesses = true
		return nil
	}
}

// RequireTimestamps is [RequireWitnesses] for RFC 3161 timestamps: the
// bundle must carry tokens over its checkpoint from the quorum of the
// policy's TSAs, and revocation uses the earliest trusted independent
// bound.
func RequireTimestamps() VerifyOption {
	return func(o *verifyOptions) error {
		o.requireTimestamps = true
		return nil
	}
}

// IndependentEvidence is what a ledger bundle's witness cosignatures and
// RFC 3161 timestamps prove, against the witnesses and TSAs of the trusted
// policy (never ones the coordinator supplies).
type IndependentEvidence struct {
	// Witnesses is nil when the policy names no witnesses.
	Witnesses *WitnessEvidence `json:"witnesses,omitempty"`
	// Timestamps is nil when the policy names no TSAs.
	Timestamps *TimestampEvidence `json:"timestamps,omitempty"`
	// TimeSource and Time are the bound revocation decisions used when
	// independent time was required ([RequireWitnesses],
	// [RequireTimestamps]); empty otherwise (the logged time was used).
	TimeSource string    `json:"timeSource,omitempty"`
	Time       time.Time `json:"time,omitzero"`
}

// WitnessEvidence says which of the policy's witnesses cosigned the
// bundle's checkpoint.
type WitnessEvidence struct {
	Quorum  int      `json:"quorum"`
	Signed  []string `json:"signed"`
	Missing []string `json:"missing,omitempty"`
	Met     bool     `json:"met"`
	// WitnessedBy is the witnessed time bound when Met.
	WitnessedBy time.Time `json:"witnessedBy,omitzero"`
	result      *witness.Result
}

// TimestampEvidence says which of the policy's TSAs timestamped the
// bundle's checkpoint.
type TimestampEvidence struct {
	Quorum int      `json:"quorum"`
	TSAs   []string `json:"tsas"`
	Met    bool     `json:"met"`
	// Time is the TSA time bound when Met.
	Time time.Time `json:"time,omitzero"`
	// Problem says why the quorum was not met.
	Problem string `json:"problem,omitempty"`
	result  *timestamp.Result
}

// checkIndependent checks the cosignatures and timestamps of a bundle
// whose checkpoint cp the log key verified. A cosignature line claiming a
// policy witness that does not verify is an error (fail closed); too few
// cosignatures or tokens is not (it is reported in the evidence).
func (t *Trust) checkIndependent(b *ledger.Bundle, cp *ledger.Checkpoint) (*IndependentEvidence, error) {
	ind := &IndependentEvidence{}
	q, err := t.Witnesses()
	switch {
	case err == nil:
		r, err := q.Verify([]byte(b.Checkpoint))
		if err != nil {
			return nil, fmt.Errorf("checkpoint cosignatures: %w", err)
		}
		ind.Witnesses = &WitnessEvidence{Quorum: r.Need, Signed: r.Signed(), Missing: r.Missing, Met: r.Met, WitnessedBy: r.WitnessedBy, result: r}
	case !errors.Is(err, ErrNoWitnesses):
		return nil, err
	}
	tr, err := t.TSAs()
	switch {
	case err == nil:
		text, err := cp.Text()
		if err != nil {
			return nil, err
		}
		r, err := tr.Verify(timestamp.CheckpointDigest(text), b.Timestamps)
		te := &TimestampEvidence{Quorum: tr.Quorum(), TSAs: r.TSAs(), result: r}
		if err != nil {
			te.Problem = err.Error()
		} else {
			te.Met, te.Time = true, r.Time
		}
		ind.Timestamps = te
	case !errors.Is(err, ErrNoTSAs):
		return nil, err
	}
	return ind, nil
}

// independentTimes reports the bundle's independent evidence in the
// verdict, warns when the policy's witnesses or TSAs did not reach their
// quorum, and, when independent time is required, returns the logged
// times replaced by the earliest trusted independent bound (or fails the
// verdict when there is none). Otherwise it returns logged unchanged.
func (t *Trust) independentTimes(v *Verdict, o *verifyOptions, logged map[string]time.Time) map[string]time.Time {
	var ind *IndependentEvidence
	if v.Ledger != nil {
		ind = v.Ledger.independent
		v.Independent = ind
	}
	if ind != nil {
		if w := ind.Witnesses; w != nil && !w.Met && !o.requireWitnesses {
			v.Warnings = append(v.Warnings, newReason(ErrNotWitnessed, w.result.Err(), "%v", w.result.Err()))
		}
		if ts := ind.Timestamps; ts != nil && !ts.Met && !o.requireTimestamps {
			v.Warnings = append(v.Warnings, newReason(ErrNotTimestamped, nil, "checkpoint not timestamped by a quorum of the policy's TSAs: %s", ts.Problem))
		}
	}
	if !o.requireWitnesses && !o.requireTimestamps {
		return logged
	}
	kind, what := ErrNotWitnessed, "witnessed"
	if !o.requireWitnesses {
		kind, what = ErrNotTimestamped, "timestamped"
	}
	if ind == nil {
		v.fail(kind, nil, "%s time is required and no verified ledger bundle gives it", what)
		return nil
	}
	var bounds []timestamp.Bound
	if o.requireWitnesses {
		switch w := ind.Witnesses; {
		case w == nil:
			v.fail(ErrNotWitnessed, ErrNoWitnesses, "witnesses are required but %v", ErrNoWitnesses)
			return nil
		case !w.Met:
			v.fail(ErrNotWitnessed, w.result.Err(), "%v", w.result.Err())
			return nil
		}
	}
	if o.requireTimestamps {
		switch ts := ind.Timestamps; {
		case ts == nil:
			v.fail(ErrNotTimestamped, ErrNoTSAs, "timestamps are required but %v", ErrNoTSAs)
			return nil
		case !ts.Met:
			v.fail(ErrNotTimestamped, nil, "checkpoint not timestamped by a quorum of the policy's TSAs: %s", ts.Problem)
			return nil
		}
	}
	if w := ind.Witnesses; w != nil && w.Met {
		if b, err := timestamp.WitnessBound(w.result); err == nil {
			bounds = append(bounds, b)
		}
	}
	if ts := ind.Timestamps; ts != nil && ts.Met {
		if b, err := timestamp.TSABound(ts.result); err == nil {
			bounds = append(bounds, b)
		}
	}
	b, err := timestamp.Earliest(timestamp.IndependentRule(o.requireWitnesses, o.requireTimestamps), bounds...)
	if err != nil {
		v.fail(kind, err, "%v", err)
		return nil
	}
	ind.TimeSource, ind.Time = string(b.Source), b.Time
	out := make(map[string]time.Time, len(logged))
	for id := range logged {
		out[id] = b.Time
	}
	return out
}

// String describes the witnesses that cosigned, for people.
func (w *WitnessEvidence) String() string {
	signed := "none"
	if len(w.Signed) > 0 {
		signed = strings.Join(w.Signed, ", ")
	}
	s := fmt.Sprintf("cosigned by %s (%d, quorum %d)", signed, len(w.Signed), w.Quorum)
	if w.Met {
		s += ", witnessed by " + w.WitnessedBy.UTC().Format(time.RFC3339)
	} else {
		s += ", QUORUM NOT MET"
	}
	return s
}
