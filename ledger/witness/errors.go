package witness

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of these (or
// is a typed error whose Is method matches one), so callers can branch with
// [errors.Is] and still print a message that names the witness and what
// failed.
var (
	// ErrBadVerifierKey: a witness vkey does not parse, is not an Ed25519
	// cosignature/v1 key (signature type 0x04), or its key ID does not match.
	ErrBadVerifierKey = errors.New("witness: bad verifier key")
	// ErrMalformedCheckpoint: the checkpoint to submit or verify is not a
	// signed note over a C2SP checkpoint.
	ErrMalformedCheckpoint = errors.New("witness: malformed checkpoint")
	// ErrBadCosignature: a cosignature by a known witness key does not
	// verify, or a witness answered without a valid cosignature by its key.
	ErrBadCosignature = errors.New("witness: bad cosignature")
	// ErrConflict: the witness answered 409 Conflict: it has recorded another
	// tree size for the log than the one the proof starts from, and
	// re-proving from the size it reported did not settle it (see
	// [ConflictError]).
	ErrConflict = errors.New("witness: conflict with the witness's recorded tree size")
	// ErrProofRejected: the witness answered 422 Unprocessable Entity: the
	// consistency proof does not lead from the tree it recorded to the
	// submitted checkpoint. With a correct prover this means the log was
	// rewritten (a fork) since the witness last cosigned.
	ErrProofRejected = errors.New("witness: consistency proof rejected (log rewritten since the witness last cosigned?)")
	// ErrForbidden: the witness answered 403 Forbidden: no signature on the
	// checkpoint verifies with a log key it trusts for the origin (and
	// litewitness v0.6.1 also answers 403 for an origin it does not know).
	ErrForbidden = errors.New("witness: checkpoint signature not accepted by the witness")
	// ErrUnknownLog: the witness answered 404 Not Found: it does not know the
	// log's origin.
	ErrUnknownLog = errors.New("witness: the witness does not know this log")
	// ErrBadRequest: the witness answered 400 Bad Request.
	ErrBadRequest = errors.New("witness: request refused as malformed")
	// ErrUnavailable: the witness could not be reached, timed out, or
	// answered with a server error or an unexpected status.
	ErrUnavailable = errors.New("witness: unavailable")
	// ErrQuorum: a quorum setting is invalid (fewer than 1, more than the
	// witnesses, repeated names or keys).
	ErrQuorum = errors.New("witness: invalid quorum")
	// ErrNoQuorum: a checkpoint does not carry the quorum of valid
	// cosignatures.
	ErrNoQuorum = errors.New("witness: checkpoint not cosigned by a quorum of witnesses")
	// ErrProver: the consistency prover failed.
	ErrProver = errors.New("witness: consistency proof unavailable")
)

// ConflictError is a 409 Conflict that re-proving did not settle: the
// witness has recorded WitnessSize for the log, and Sent is the old size of
// the last request. A WitnessSize larger than the checkpoint's, or equal to
// it with another root, is evidence of a fork or rollback (or of a stale
// checkpoint submitted after a newer one).
type ConflictError struct {
	Witness     string
	Sent        int64
	WitnessSize int64
	Size        int64 // the submitted checkpoint's size
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: witness %s has recorded size %d; request was from old size %d to checkpoint size %d",
		ErrConflict, e.Witness, e.WitnessSize, e.Sent, e.Size)
}

// Is reports ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// HTTPError is a refusal by the witness: its HTTP status and the start of
// its answer. Its Is method matches the sentinel for the status (404
// [ErrUnknownLog], 403 [ErrForbidden], 422 [ErrProofRejected], 400
// [ErrBadRequest], anything else [ErrUnavailable]).
type HTTPError struct {
	Witness string
	Status  int
	Body    string // at most maxErrorBody bytes, control characters replaced
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%v: witness %s answered HTTP %d: %q", e.sentinel(), e.Witness, e.Status, e.Body)
}

func (e *HTTPError) sentinel() error {
	switch e.Status {
	case 404:
		return ErrUnknownLog
	case 403:
		return ErrForbidden
	case 422:
		return ErrProofRejected
	case 400:
		return ErrBadRequest
	case 409:
		return ErrConflict
	}
	return ErrUnavailable
}

// Is matches the sentinel for the status.
func (e *HTTPError) Is(target error) bool { return target == e.sentinel() }
