// Package witness is the client side of transparency-log witnessing for
// quorate's ledger: it submits signed checkpoints to witnesses over
// c2sp.org/tlog-witness, checks their c2sp.org/tlog-cosignature
// cosignatures, decides whether a quorum of named witnesses cosigned, and
// derives the witnessed time bound that does not depend on the
// coordinator's clock. It is pure Go and does not import the ledger (the
// ledger may use it); consistency proofs come from a [ConsistencyProver].
//
// # Witnesses and keys
//
// A witness is a name (a schema-less URL such as witness.example/w1) and an
// Ed25519 key, written as a vkey ([ParseVerifierKey]):
//
//	witness.example/w1+<key ID, 8 hex digits>+<base64(0x04 || 32-byte key)>
//
// where the key ID is SHA-256(name || "\n" || 0x04 || key)[:4] ([KeyID]).
// Witnesses verify the log's checkpoints with the log's own vkey (signature
// type 0x01, Ed25519: see ledger.VerifierKey); they cannot verify ECDSA log
// keys, so a witnessed log needs an Ed25519 log key.
//
// # Submitting
//
// [Client.AddCheckpoint] POSTs to <prefix>/add-checkpoint
//
//	old <size the witness last cosigned>
//	<consistency proof, one base64 hash per line>
//	<blank line>
//	<signed checkpoint note>
//
// and returns the witness's cosignature, verified. A 409 Conflict carries
// the size the witness has recorded (text/x.tlog.size); the client re-proves
// from it, and gives up with a [ConflictError] when the witness is ahead of
// the checkpoint or reports the size it was just sent (same size, another
// root: a fork). 422 means the proof does not lead from the witness's tree
// to this one — the log was rewritten ([ErrProofRejected]); 403
// ([ErrForbidden]) and 404 ([ErrUnknownLog]) mean the witness does not trust
// this log key or origin. [Submit] asks several witnesses at once; one that
// is down delays only its own cosignature.
//
// # Cosignatures and quorum
//
// A cosignature is a note signature line by the witness key whose signature
// is timestamp (8 bytes, big-endian POSIX seconds) || Ed25519 signature over
//
//	cosignature/v1
//	time <timestamp>
//	<checkpoint text>
//
// [Quorum.Verify] counts, for a signed checkpoint, the witnesses of a
// [Quorum] (N of M named witnesses) with a valid cosignature; lines by other
// keys are ignored, and a line that claims a quorum witness's key but does
// not verify fails the whole checkpoint. It reports who signed, who is
// missing, whether the quorum is met, and the witnessed time bound:
//
// # Witnessed time
//
// WitnessedBy is the N-th smallest cosignature timestamp (N the quorum)
// plus one second minus one nanosecond: the earliest instant by which N
// witnesses each attest the checkpoint existed, rounded up to cover the
// truncated second. The checkpoint, and every entry it covers, existed at or
// before it, unless N witnesses lie together with the log. See
// [Quorum.Verify] for the argument. A coordinator that back-dates an entry
// cannot make it older than the witnessed bound of the first cosigned
// checkpoint that includes it.
//
// # Concurrency
//
// [Verifier], [Quorum] and [Client] are safe for concurrent use.
package witness
