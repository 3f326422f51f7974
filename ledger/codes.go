package ledger

import "errors"

// codes are the stable machine codes of the sentinel errors, in the order
// Code tries them: the most specific first (a ForkError also matches
// nothing else; a checkpoint that does not open is named before a proof).
var codes = []struct {
	err  error
	code string
}{
	{ErrFork, "fork"},
	{ErrEntryModified, "entry_modified"},
	{ErrRootMismatch, "root_mismatch"},
	{ErrSequence, "sequence"},
	{ErrSizeMismatch, "size_mismatch"},
	{ErrTimeRegression, "time_regression"},
	{ErrCheckpointTime, "checkpoint_time"},
	{ErrCheckpointSignature, "checkpoint_signature"},
	{ErrWrongOrigin, "wrong_origin"},
	{ErrMalformedCheckpoint, "malformed_checkpoint"},
	{ErrUnsupportedLogKey, "unsupported_log_key"},
	{ErrMalformedEntry, "malformed_entry"},
	{ErrMalformedBundle, "malformed_bundle"},
	{ErrProof, "proof"},
	{ErrOutOfRange, "out_of_range"},
	{ErrConflict, "conflict"},
	{ErrInvalidAppend, "invalid_append"},
	{ErrInvalidEvent, "invalid_event"},
}

// Code returns the stable machine code of the first of this package's
// sentinel errors err matches ("fork", "root_mismatch", "entry_modified",
// "checkpoint_signature", "proof", …), or "" when it matches none. Tools
// print it (quorate log verify --output json) so that scripts branch on the
// code, never on the message; the codes never change.
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}
