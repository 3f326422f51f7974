package timestamp

import (
	"fmt"
	"slices"
	"time"

	"github.com/quorate-dev/quorate/ledger/witness"
)

// Source is where an upper bound on an entry's time comes from.
type Source string

const (
	// SourceLog is the coordinator's logged time (ledger.Entry.Time): the
	// coordinator's own clock, trusted only as far as the coordinator is.
	SourceLog Source = "log"
	// SourceWitnesses is the witnessed bound (witness.Result.WitnessedBy)
	// of the earliest checkpoint including the entry that a quorum of the
	// policy's witnesses cosigned.
	SourceWitnesses Source = "witnesses"
	// SourceTSA is the trusted time (Result.Time) of a quorum of the
	// policy's TSAs over a checkpoint including the entry.
	SourceTSA Source = "tsa"
)

// Bound is an upper bound on when a log entry existed: the entry existed
// at or before Time, provided the Source is honest. By says who vouches
// (the witnesses or TSAs that counted).
type Bound struct {
	Source Source
	Time   time.Time
	By     string
}

// Before reports whether the bound proves the entry existed strictly
// before t (a revocation time): the entry counts under a key revoked since
// t only if Before(t).
func (b Bound) Before(t time.Time) bool { return !b.Time.IsZero() && b.Time.Before(t) }

// LogBound is the coordinator's logged time of an entry.
func LogBound(logged time.Time) Bound {
	return Bound{Source: SourceLog, Time: logged.UTC(), By: "coordinator clock"}
}

// WitnessBound is the witnessed bound of a cosigned checkpoint including
// the entry; r must meet its quorum.
func WitnessBound(r *witness.Result) (Bound, error) {
	if r == nil || !r.Met || r.WitnessedBy.IsZero() {
		return Bound{}, fmt.Errorf("%w: the checkpoint is not cosigned by a witness quorum", ErrNoTrustedTime)
	}
	return Bound{Source: SourceWitnesses, Time: r.WitnessedBy.UTC(), By: fmt.Sprint(r.Signed())}, nil
}

// TSABound is the trusted time of a verified quorum of tokens over a
// checkpoint including the entry.
func TSABound(r *Result) (Bound, error) {
	if r == nil || r.Time.IsZero() || len(r.Stamps) < r.Need {
		return Bound{}, fmt.Errorf("%w: no TSA quorum", ErrNoTrustedTime)
	}
	return Bound{Source: SourceTSA, Time: r.Time.UTC(), By: fmt.Sprint(r.TSAs())}, nil
}

// Rule says which sources a verifier trusts for an entry's time, and which
// it requires.
type Rule struct {
	// Trusted lists the sources whose bounds count.
	Trusted []Source
	// Required lists sources that must give a bound (a subset of Trusted).
	Required []Source
}

// LogTimeRule trusts the coordinator's logged time alone (no independent
// time required): the behaviour before witnesses and TSAs.
func LogTimeRule() Rule { return Rule{Trusted: []Source{SourceLog}, Required: []Source{SourceLog}} }

// IndependentRule trusts witnesses and TSAs, not the coordinator's clock,
// and requires the sources named (at least one of witnesses and TSAs must
// give a bound in any case).
func IndependentRule(requireWitnesses, requireTSA bool) Rule {
	r := Rule{Trusted: []Source{SourceWitnesses, SourceTSA}}
	if requireWitnesses {
		r.Required = append(r.Required, SourceWitnesses)
	}
	if requireTSA {
		r.Required = append(r.Required, SourceTSA)
	}
	return r
}

func (r Rule) validate() error {
	if len(r.Trusted) == 0 {
		return fmt.Errorf("%w: the rule trusts no source", ErrTrust)
	}
	for _, s := range append(slices.Clone(r.Trusted), r.Required...) {
		if s != SourceLog && s != SourceWitnesses && s != SourceTSA {
			return fmt.Errorf("%w: unknown time source %q", ErrTrust, s)
		}
	}
	for _, s := range r.Required {
		if !slices.Contains(r.Trusted, s) {
			return fmt.Errorf("%w: source %q required but not trusted", ErrTrust, s)
		}
		if s != SourceLog && slices.Contains(r.Trusted, SourceLog) {
			return fmt.Errorf("%w: requiring %s time while trusting the coordinator's clock would let the logged time decide", ErrTrust, s)
		}
	}
	return nil
}

// Earliest returns the earliest trusted upper bound on when an entry
// existed: the minimum of the bounds whose source the rule trusts. Bounds
// from other sources are ignored; a required source without a bound, or no
// trusted bound at all, is an error wrapping [ErrNoTrustedTime].
//
// # The rule
//
// Each trusted bound B_s says "the entry existed at or before B_s" and is
// true as long as its source is honest (the coordinator for the logged
// time; fewer than N of the quorum's witnesses lying with the log for the
// witnessed bound; fewer than N of the quorum's TSAs lying for the TSA
// time). Existence by a time is monotone: an entry that existed by B
// existed by any later time. So if every trusted bound is true, the entry
// existed by each of them, hence by their minimum; and no trusted source
// vouches for an earlier time. The minimum over trusted upper bounds is
// therefore sound exactly as long as every source in the rule is — adding
// a source can only make the time earlier, so the rule must trust only
// sources the policy names (witness and TSA bounds verified against the
// policy's keys and certificates). In particular, when witnessed or TSA
// time is required, the coordinator's clock must not be trusted: a
// back-dated logged time would otherwise be the minimum and decide.
// [Rule] refuses that combination, and [IndependentRule] leaves the logged
// time out.
//
// A revoked key's signature (revoked since R) counts only when
// Earliest(...).Before(R): its entry provably existed strictly before R. A
// bound at or after R, or none, does not count (fail closed).
func Earliest(rule Rule, bounds ...Bound) (Bound, error) {
	if err := rule.validate(); err != nil {
		return Bound{}, err
	}
	var best Bound
	have := map[Source]bool{}
	for _, b := range bounds {
		if !slices.Contains(rule.Trusted, b.Source) {
			continue
		}
		if b.Time.IsZero() {
			return Bound{}, fmt.Errorf("%w: %s bound without a time", ErrNoTrustedTime, b.Source)
		}
		have[b.Source] = true
		if best.Time.IsZero() || b.Time.Before(best.Time) {
			best = b
		}
	}
	for _, s := range rule.Required {
		if !have[s] {
			return Bound{}, fmt.Errorf("%w: no %s bound, and the rule requires one", ErrNoTrustedTime, s)
		}
	}
	if best.Time.IsZero() {
		return Bound{}, fmt.Errorf("%w: none of the trusted sources %v gave a bound", ErrNoTrustedTime, rule.Trusted)
	}
	return best, nil
}
