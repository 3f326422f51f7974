package policy

import "fmt"

// CheckpointWitnesses checks the witness cosignatures on a checkpoint note
// (one the log key already verified, as served with its cosignature lines)
// against the witnesses and quorum of the policy, and says who cosigned.
// It returns [ErrNoWitnesses] when the policy names none. A cosignature
// line of a policy witness that does not verify is an error wrapping
// [ErrNotWitnessed] (fail closed); a quorum not met is not an error: the
// evidence says so (Met false) and [WitnessEvidence.Err] is the reason.
func (t *Trust) CheckpointWitnesses(note []byte) (*WitnessEvidence, error) {
	q, err := t.Witnesses()
	if err != nil {
		return nil, err
	}
	r, err := q.Verify(note)
	if err != nil {
		return nil, newReason(ErrNotWitnessed, err, "checkpoint cosignatures: %v", err)
	}
	return &WitnessEvidence{Quorum: r.Need, Signed: r.Signed(), Missing: r.Missing, Met: r.Met, WitnessedBy: r.WitnessedBy, result: r}, nil
}

// Err is nil when the quorum was met, else the reason it was not, of kind
// [ErrNotWitnessed].
func (w *WitnessEvidence) Err() error {
	if w == nil {
		return newReason(ErrNotWitnessed, nil, "no witness evidence")
	}
	if w.Met {
		return nil
	}
	if w.result != nil {
		if err := w.result.Err(); err != nil {
			return newReason(ErrNotWitnessed, err, "%v", err)
		}
	}
	return newReason(ErrNotWitnessed, nil, "%s", fmt.Sprintf("cosigned by %d of the policy's witnesses, quorum %d", len(w.Signed), w.Quorum))
}
