// Package ledger is quorate's transparency log: the append-only,
// tamper-evident record of every event of the coordinator, independent of
// any database.
//
// The coordinator appends an [Entry] for each event through a [Log], into a
// [Storage] its own database implements inside its transaction; signs
// checkpoints of the log with the log key (an [keys.Signer]); and attaches to
// each composite attestation a [Bundle] proving the partial signatures and
// the attestation were logged, and when. Anyone holding the log's public key
// and origin verifies a bundle offline with [VerifyBundle], and an auditor
// with all entries re-checks the whole log with [Audit].
//
// # Entries
//
// An entry records one event ([EventType]: request opened, signature
// accepted, attestation emitted, request cancelled or expired, policy or
// root published, key revoked) with its log index and logged time, as
// canonical JSON (OLPC canonical JSON, byte for byte what go-securesystemslib's cjson
// produces):
// sorted keys, no insignificant space, optional fields omitted when zero,
// strings free of control characters. For example:
//
//	{"format":"quorate/ledger-entry/v1","index":3,"key_id":"0123…","payload_sha256":"aaaa…",
//	 "request_id":"r1","time":"2026-03-01T12:00:00.123Z","type":"signature.accepted"}
//
// (one line on the wire). Each event type has required and allowed fields
// ([Event.Validate]); digests and key IDs are 64 lowercase hex digits.
// [ParseEntry] accepts exactly the canonical encoding: duplicate or unknown
// keys, wrong types, other spellings of the same value and trailing data are
// all rejected, so one event has one encoding and one leaf hash.
//
// An entry carries its own index. A deleted, duplicated or moved entry is
// therefore found at the place it happened ([SequenceError]), not only as
// a root mismatch.
//
// Logged time is the coordinator's clock when [Log.Append] runs, in UTC,
// truncated to the millisecond (the precision SQL stores, JSON readers and
// people share; finer would be false precision for a clock that is not
// itself trusted to the nanosecond). The log never lets time go backwards:
// an entry's time is the later of the clock and the previous entry's time,
// and [Audit] checks the order.
//
// # Tree
//
// Entries are the leaves of an RFC 6962 Merkle tree. Hashing, proofs and
// their checks are golang.org/x/mod/sumdb/tlog's ([TreeHash],
// [InclusionProof], [ConsistencyProof], [VerifyInclusion],
// [VerifyConsistency]); [Audit] recomputes roots with a second, independent
// implementation (transparency-dev/merkle's compact ranges), and the tests
// check every tlog proof with transparency-dev/merkle's verifiers.
//
// [Storage] is the seam to a database: size, stored hashes by tlog index,
// entries by range, and an all-or-nothing append that must start at the
// current size ([ErrConflict] otherwise), so the sequence has no gaps and
// nothing is ever rewritten. [MemoryStorage] keeps a log in memory; package
// ledgertest checks any implementation against the contract in one line.
//
// # Checkpoints
//
// A checkpoint is a C2SP tlog-checkpoint signed note: origin, tree size,
// base64 root hash, and one extension line carrying the logged time
// ([Checkpoint.Text]):
//
//	quorate.example/log
//	20
//	Wd0n…=
//	quorate-time 2026-03-01T12:00:00.020Z
//
//	— quorate.example/log AAbc…
//
// The log key signs under the origin as key name, with the C2SP signed-note
// signature types: 0x01 Ed25519 (key ID SHA-256(name || 0x0A || 0x01 ||
// key)[:4], a standard vkey that golang.org/x/mod/sumdb/note.NewVerifier
// reads) or 0x02 ECDSA P-256 as transparency-dev/witness defines it (ASN.1
// signature over SHA-256 of the text, key ID SHA-256(DER
// SubjectPublicKeyInfo)[:4]). [VerifierKey] prints either vkey. Other keys
// (P-384, RSA) are refused with [ErrUnsupportedLogKey]: no signed-note
// verifier would accept them. Signing goes through the [keys.Signer], and
// every signature is checked before it is published.
//
// Why an extension line for the time: the signed-note timestamped signature
// type (0x04, c2sp.org/tlog-cosignature) exists only for Ed25519 and states
// when a witness saw a tree, not when the log logged its entries; an HSM log
// key is most likely ECDSA P-256, for which no timestamped type exists. An
// extension line is covered by the log's signature whatever its algorithm.
// The checkpoint spec discourages extension lines because monitors cannot
// audit them; this one is auditable: it is defined as the logged time of the
// checkpoint's last entry (the epoch for an empty log), which [Audit] checks
// exactly. A consequence is that checkpoints of one log at one size have the
// same text, so two different texts at one size prove misbehaviour. The time
// says when the covered entries were logged, not how fresh the checkpoint
// is; freshness needs witnesses, which may cosign these checkpoints
// unchanged (unknown signatures are ignored).
//
// [OpenCheckpoint] verifies a signed checkpoint with a [keys.PublicKey] that
// must come from trust material (never from the coordinator) and parses it
// strictly ([ParseCheckpoint] accepts exactly what [Checkpoint.Text]
// writes; unknown extension lines are rejected).
//
// # Bundles and audits
//
// A [Bundle] is JSON: a signed checkpoint, and for each entry its index,
// bytes and inclusion proof. [VerifyBundle] checks the signature, every
// proof, that each entry parses and records its index, and that none was
// logged after the checkpoint's time; it returns the entries with their
// logged times, or an error and nothing.
//
// [Audit] takes all entries from index 0, a signed checkpoint and,
// optionally, the previously verified checkpoint (the state of `quorate log
// verify`), and reports where things differ with errors that carry the
// evidence: [SequenceError] (position and recorded index), [ErrSizeMismatch],
// [RootMismatchError] (size, signed and computed roots),
// [LeafMismatchError] (the modified entry, when a reference storage whose
// leaves reproduce the signed root is given), [ForkError] (previous size and
// root against the computed one, or a rollback), [ErrCheckpointTime].
//
// # What it does not do
//
// The package trusts the coordinator's clock for logged time and does not
// stop a coordinator from showing different logs to different parties
// (split view); comparing checkpoints across parties, keeping the previous
// checkpoint ([AuditConfig.Previous]) and witness cosignatures do. It does
// not serialize writers: the storage must (one transaction, and a primary
// key on the index), and a racing append fails with [ErrConflict].
//
// # Concurrency
//
// [Log] holds no mutable state and is safe for concurrent use;
// [MemoryStorage] is safe for concurrent use; other values are not, unless
// their documentation says so.
package ledger
