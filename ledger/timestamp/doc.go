// Package timestamp gives quorate's log entries an independent time: RFC
// 3161 timestamps from timestamp authorities (TSAs) over the log's
// checkpoints, so that a coordinator cannot back-date a partial signature
// by setting its clock back. It asks TSAs for tokens ([Client]), verifies
// tokens against the TSAs a policy trusts ([Trust]), decides whether
// enough distinct TSAs agree, and combines the result with the other time
// sources ([Earliest]). It is pure Go (no cgo), for verifiers and deploy
// gates as much as for the coordinator.
//
// # What is timestamped: checkpoints, not single signatures
//
// The coordinator already keeps every event in an RFC 6962 Merkle tree (the
// ledger) and writes checkpoints of it. A TSA timestamps a checkpoint: the
// imprint is SHA-256 of the checkpoint's note text ([CheckpointDigest];
// origin, tree size, root hash, logged time — the text
// [github.com/quorate-dev/quorate/ledger.Checkpoint.Text] writes, without
// signature lines). One token then covers the whole batch of entries
// logged since the previous timestamped checkpoint, whatever their number,
// and an entry's proof is its inclusion proof in that checkpoint's tree
// ([github.com/quorate-dev/quorate/ledger.InclusionProof] at the
// checkpoint's size), which the ledger code already makes and checks. The
// token binds the text, the text binds the root, the root binds the entry:
// so the entry (a "signature accepted" event with the envelope's hash)
// existed by the token's time. [Evidence] is what a bundle carries (the
// checkpoint text and the tokens); [Trust.VerifyEntry] checks it for one
// entry.
//
// Per-signature tokens were rejected: one HTTP round trip per signature
// per TSA puts the TSAs on the write path and multiplies their load (public
// TSAs rate-limit), while a checkpoint token costs one request per TSA per
// batch and its proof is a few hashes the bundle already knows how to
// carry. The price is latency: an entry's time is bounded only once a
// checkpoint that includes it is timestamped, so the coordinator should
// timestamp soon after each batch of writes.
//
// # For the coordinator (wiring comes after the refactor of issue 12)
//
// `serve --tsa URL…` is meant to create one [Client] per URL (with
// [WithTrust] from the policy, so a misconfigured TSA shows at once), and
// after each batch of appended entries call [StampCheckpoint] with the new
// checkpoint, outside the write transaction: a TSA that is down or slow
// delays only its own token, never the coordinator's writes (retry later
// with a newer checkpoint). It stores the [Evidence] by checkpoint size;
// when it builds a bundle, each entry gets the evidence of the smallest
// timestamped checkpoint that includes it and its inclusion proof at that
// size.
//
// # Verifying a token
//
// [Trust.VerifyToken] parses a token with github.com/digitorus/timestamp
// and github.com/digitorus/pkcs7 and checks the CMS signature and the ESS
// signing-certificate attribute, the chain of the TSA certificate to the
// roots of a trusted [Authority] with every certificate valid at the
// token's genTime, the critical id-kp-timeStamping-only extended key usage
// (RFC 3161 §2.3), and the SHA-256 imprint. Failures are typed:
// [ErrBadImprint], [ErrUntrustedChain], [ErrCertificateExpired],
// [ErrMissingEKU], [ErrBadSignature], [ErrMalformedToken]. The current time
// plays no part: a token made while its TSA certificate was valid stays
// valid after the certificate expires. Revocation of TSA certificates
// (CRL, OCSP) is not checked, so a policy should name the TSAs' own roots
// and drop a compromised TSA from the policy.
//
// # Quorum and trusted time
//
// [Trust.Verify] counts distinct TSAs among valid tokens: tokens whose
// signing certificates share a subject or a public key, or chain to the
// same [Authority], are from one TSA (transitively), so one TSA asked twice,
// or under two certificates, counts once; [NewTrust] refuses one root under
// two authorities. Each token vouches that the imprint existed by its
// bound, genTime + accuracy ([DefaultAccuracy] when absent; one more
// second when genTime has no fraction). With N the quorum, the trusted time
// is the N-th smallest bound among distinct TSAs: N TSAs vouch for it, so
// it holds unless N of them lie. Too few is a [NotEnoughError] that also
// says why each rejected token failed.
//
// # Earliest trusted time
//
// [Earliest] takes upper bounds from the sources a [Rule] trusts — the
// coordinator's logged time ([LogBound]), the witnessed bound of a
// cosigned checkpoint ([WitnessBound], from package
// [github.com/quorate-dev/quorate/ledger/witness]), the TSA time
// ([TSABound]) — and returns their minimum, the earliest trusted upper
// bound on when the entry existed. A revoked key's signature counts only
// when that bound is strictly before the revocation time ([Bound.Before]).
// The argument, and why the coordinator's clock must be left out once
// independent time is required, is at [Earliest]; docs/time.md explains
// it for policy authors.
//
// # Concurrency
//
// [Trust] and [Client] are safe for concurrent use; other values are not,
// unless their documentation says so.
package timestamp
