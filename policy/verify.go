package policy

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/roles"
)

// Artifact is what a verifier expects an attestation to cover: the digests
// of one artifact (from the file itself, or given on the command line).
type Artifact struct {
	Name    string
	Digests []attest.Digest
}

// Request says what to verify.
type Request struct {
	Gate      string
	Artifacts []Artifact
	// Now is the verification time; the clock is read once by the caller.
	Now    time.Time
	Limits attest.Limits // zero fields take their values from attest.DefaultLimits
	// LoggedTimes are trusted logged times of the envelope's signatures, by
	// key ID, never a signer's own claim: normally left nil and proven by a
	// ledger bundle ([WithLedgerBundle]), whose times take precedence. A
	// revoked key's signature counts only with a logged time before the
	// revocation; a retired key's not with one at or after the retirement.
	LoggedTimes map[string]time.Time
}

// KeyRef is one key counted for a role.
type KeyRef struct {
	KeyID    string `json:"keyid"` // for a keyless signer, the identity ISSUER=SUBJECT the policy lists
	Identity string `json:"identity"`
	Keyless  bool   `json:"keyless,omitempty"`
}

// RoleVerdict is the outcome for one role of the gate.
type RoleVerdict struct {
	Role      string   `json:"role"`
	Threshold int      `json:"threshold"`
	Met       bool     `json:"met"`
	Keys      []KeyRef `json:"keys"`
}

// SignatureVerdict says what became of one signature of the envelope.
type SignatureVerdict struct {
	Index   int    `json:"index"`
	KeyID   string `json:"keyid"`
	Role    string `json:"role,omitempty"`
	Counted bool   `json:"counted"`
	Problem string `json:"problem,omitempty"`
	// Code is the machine code of Problem's [Kind] (see [Reason]).
	Code string `json:"code,omitempty"`
	// Revoked and Retired mark a valid signature not counted because the
	// latest policy revokes or retires its key; RevocationReason is the
	// revocation's reason text.
	Revoked          bool      `json:"revoked,omitempty"`
	Retired          bool      `json:"retired,omitempty"`
	RevocationReason string    `json:"revocationReason,omitempty"`
	LoggedAt         time.Time `json:"loggedAt,omitzero"`
	// Keyless is ISSUER=SUBJECT of a keyless signature's certificate, once
	// its chain verified (keyid starts with "x509:"; see package keyless).
	Keyless string `json:"keyless,omitempty"`
	kind    *Kind
	cause   error
}

// refuse marks the signature not counted because of k.
func (sv *SignatureVerdict) refuse(k *Kind, cause error, problem string) {
	sv.Problem, sv.Code, sv.kind, sv.cause = problem, k.code, k, cause
}

// Verdict is the outcome of a verification: the counts per role and, when
// not verified, every reason; warnings say what was not checked (a ledger
// bundle that did not verify when the ledger was not required).
type Verdict struct {
	Verified      bool   `json:"verified"`
	Gate          string `json:"gate"`
	PolicyVersion int64  `json:"policyVersion"` // the version the attestation was checked against
	// LatestPolicyVersion is the trusted policy's version, whose
	// revocations and retirements applied.
	LatestPolicyVersion int64              `json:"latestPolicyVersion"`
	RequestID           string             `json:"requestId,omitempty"`
	Expires             time.Time          `json:"expires,omitzero"`
	Subjects            []attest.Subject   `json:"subjects,omitempty"`
	Roles               []RoleVerdict      `json:"roles"`
	Signatures          []SignatureVerdict `json:"signatures"`
	Reasons             []Reason           `json:"reasons,omitempty"`
	Warnings            []Reason           `json:"warnings,omitempty"`
	// Provenance summarises the attestation's build provenance, when it
	// carries (or references, and the caller supplied) one that could be
	// read; the caller escapes its strings for display.
	Provenance *provenance.Summary `json:"provenance,omitempty"`
	// Ledger is what a ledger bundle ([WithLedgerBundle]) proved, or nil.
	Ledger *LogEvidence `json:"-"`
	// Independent is what the ledger bundle's witness cosignatures and
	// timestamps proved against the policy's witnesses and TSAs, or nil.
	Independent *IndependentEvidence `json:"independent,omitempty"`
	// KeyNames are the display names and owners the trusted policy gives
	// the keys of Signatures ([KeyNamesField]), for people: nothing above
	// was decided by a name.
	KeyNames KeyNames `json:"keyNames,omitempty"`
}

func (v *Verdict) fail(k *Kind, cause error, format string, args ...any) {
	v.Reasons = append(v.Reasons, newReason(k, cause, format, args...))
}

// Err returns nil for a verified verdict, or an error joining every
// [Reason]: errors.Is(v.Err(), policy.ErrKeyRevoked) and the like work.
func (v *Verdict) Err() error {
	if v.Verified {
		return nil
	}
	if len(v.Reasons) == 0 {
		return errors.New("attestation not verified")
	}
	errs := make([]error, len(v.Reasons))
	for i, r := range v.Reasons {
		errs[i] = r
	}
	return fmt.Errorf("attestation not verified: %w", errors.Join(errs...))
}

// VerifyOption configures one verification (see [Trust.Verify]). An option
// given a bad value makes the verification fail closed, with reason
// [ErrInvalidRequest].
type VerifyOption func(*verifyOptions) error

type verifyOptions struct {
	requireWitnesses, requireTimestamps bool // RequireWitnesses, RequireTimestamps

	bundle        []byte
	haveBundle    bool
	requireLedger bool
	reassembled   bool
	history       Source
	provenance    []byte // WithProvenance; nil when not given
	verified      func(k *keys.PublicKey, digest, sig []byte) bool
}

// WithVerifiedSignatures lets the verifier skip the cryptographic check of
// a signature for which verified reports true: a signature by key k over
// digest (k's digest of the envelope's PAE) that this process has already
// seen verify with exactly that key. Everything else is checked as
// without the option — key, role, gate, duplicates, lifecycle — and a
// signature verified does not know is verified as usual. Verification is
// a pure function of (key, digest, signature), so the verdict is the same
// as long as verified reports true only for triples that did verify; a
// signature altered after it was remembered has other bytes and is checked
// again. The coordinator uses it for the composite it checks before
// emitting, whose signatures it verified on arrival. verified is called
// from one goroutine at a time.
func WithVerifiedSignatures(verified func(k *keys.PublicKey, digest, sig []byte) bool) VerifyOption {
	return func(o *verifyOptions) error {
		o.verified = verified
		return nil
	}
}

// WithLedgerBundle verifies the attestation together with its ledger
// bundle (ledger.Bundle JSON, as `quorate request bundle` writes it): the
// bundle is checked against the policy's log key and its proven logged
// times feed the revocation and retirement rules. Without [RequireLedger],
// a bundle that does not verify (an empty one included) is a warning in
// the verdict ([ErrBadLedgerBundle]) and verification proceeds without
// logged times.
func WithLedgerBundle(bundle []byte) VerifyOption {
	return func(o *verifyOptions) error {
		o.bundle, o.haveBundle = bundle, true
		return nil
	}
}

// RequireLedger makes the ledger mandatory: the verdict fails unless a
// ledger bundle ([WithLedgerBundle]) verifies and proves that every
// counted signature and the attestation itself were logged.
func RequireLedger() VerifyOption {
	return func(o *verifyOptions) error {
		o.requireLedger = true
		return nil
	}
}

// Reassembled says the envelope was re-assembled from per-signer Sigstore
// bundles (package sigbundle), not read as the coordinator emitted it: its
// bytes need not be those the ledger's attestation.emitted entry names, so
// [RequireLedger] then requires the signature.accepted entry of every
// counted signature (which name the request, payload, key ID and signature
// bytes, and so apply unchanged) and not the emitted entry.
func Reassembled() VerifyOption {
	return func(o *verifyOptions) error {
		o.reassembled = true
		return nil
	}
}

// WithHistory is where earlier policy versions are read from when the
// attestation was signed under one (see [Trust.PolicyAt]); usually
// [Trust.Source]. Without it (or with a nil src), such an attestation fails
// with [ErrPolicyMismatch]: verification does no I/O it was not given.
func WithHistory(src Source) VerifyOption {
	return func(o *verifyOptions) error {
		o.history = src
		return nil
	}
}

// Verify reads an envelope from r and verifies it against the trust for
// req. It never returns nil; Verified is true only when every check passed:
//
//   - the envelope is well-formed and within limits, of type attest.PayloadType,
//     carrying an in-toto Statement v1 with the release-approval predicate;
//   - the predicate names req.Gate, this policy's version and digest (or an
//     earlier version the policy endorses, read through [WithHistory]), and
//     has not expired at req.Now;
//   - every artifact of req matches a subject by every digest given;
//   - each role of the gate has at least its threshold of distinct keys (by
//     identity) of that role with a valid signature over the PAE;
//   - when the gate requires provenance ([Trust.ProvenanceRequirements]),
//     the predicate embeds provenance, or references one supplied with
//     [WithProvenance] and of the referenced digest, that meets the gate's
//     requirements (provenance.Check), each failure a reason of its own
//     kind (ErrProvenanceRequired, ErrProvenanceBuilder, ErrProvenanceRef…);
//   - with [RequireLedger], the ledger bundle proves every counted signature
//     and the attestation were logged.
//
// Signatures that fail (bad encoding, unknown key, key of no role of the gate,
// a key already counted, a bad signature) are not counted and do not stop the
// others from counting. The envelope is parsed once, within req.Limits.
func (t *Trust) Verify(r io.Reader, req Request, opts ...VerifyOption) *Verdict {
	data, err := attest.ReadLimited(r, req.Limits)
	if err != nil {
		v := t.newVerdict(req)
		v.fail(ErrMalformedAttestation, err, "%v", err)
		return v
	}
	return t.VerifyBytes(data, req, opts...)
}

// VerifyBytes is [Trust.Verify] over an envelope held in memory.
func (t *Trust) VerifyBytes(data []byte, req Request, opts ...VerifyOption) *Verdict {
	v := t.newVerdict(req)
	var o verifyOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			v.fail(ErrInvalidRequest, err, "%v", err)
			return v
		}
	}
	limits := req.Limits.OrDefault()
	if int64(len(data)) > limits.MaxBytes {
		err := fmt.Errorf("%w: over the %d-byte limit", attest.ErrTooLarge, limits.MaxBytes)
		v.fail(ErrMalformedAttestation, err, "%v", err)
		return v
	}
	env, payload, err := attest.ParseEnvelope(data, limits)
	if err != nil {
		v.fail(ErrMalformedAttestation, err, "%v", err)
		return v
	}
	t.verifyEnvelope(v, data, env, payload, req, limits, &o)
	ids := make([]string, len(v.Signatures))
	for i, s := range v.Signatures {
		ids[i] = s.KeyID
	}
	v.KeyNames = t.KeyNames.Subset(ids...)
	return v
}

func (t *Trust) newVerdict(req Request) *Verdict {
	return &Verdict{Gate: req.Gate, PolicyVersion: t.Version(), LatestPolicyVersion: t.Version(), Roles: []RoleVerdict{}, Signatures: []SignatureVerdict{}}
}

func (t *Trust) verifyEnvelope(v *Verdict, data []byte, env *attest.Envelope, payload []byte, req Request, limits attest.Limits, o *verifyOptions) {
	if req.Now.IsZero() {
		v.fail(ErrInvalidRequest, nil, "verification time not set")
		return
	}
	t.checkExpiry(v, req.Now)
	if env.PayloadType != attest.PayloadType {
		v.fail(ErrMalformedAttestation, nil, "payloadType %q is not %q", env.PayloadType, attest.PayloadType)
	}
	set := t.Roles // counted against the latest version unless the predicate names another
	st, pred, err := attest.ParseStatement(payload, limits)
	if err != nil {
		v.fail(ErrMalformedAttestation, err, "%v", err)
	} else {
		v.RequestID, v.Expires, v.Subjects = pred.RequestID, pred.Expires, st.Subject
		if pv := t.checkPredicate(v, pred, req, o.history); pv != nil {
			set, v.PolicyVersion = pv.Roles, pv.Version
		}
		checkSubjects(v, st.Subject, req.Artifacts)
		t.checkProvenance(v, pred.Provenance, st.Subject, req.Gate, o.provenance)
	}

	logged := req.LoggedTimes
	switch {
	case o.haveBundle && pred != nil:
		ev, err := t.checkLedgerBundle(data, env, payload, pred, o.bundle, o.history)
		switch {
		case err != nil && o.requireLedger:
			v.fail(ErrBadLedgerBundle, err, "%v", err)
		case err != nil:
			v.Warnings = append(v.Warnings, newReason(ErrBadLedgerBundle, err, "%v", err))
		default:
			v.Ledger, logged = ev, ev.Signatures
		}
	case !o.haveBundle && o.requireLedger:
		v.fail(ErrNotLogged, nil, "no log bundle given: the log is required")
	}
	logged = t.independentTimes(v, o, logged)

	tally, err := set.NewTally(req.Gate)
	if err != nil {
		v.fail(tallyKind(err), err, "%v", err)
		return
	}
	t.countSignatures(v, set, tally, env, payload, logged, o.verified)
	results := tally.Results()
	v.Roles = slices.Grow(v.Roles, len(results))
	for _, rr := range results {
		rv := RoleVerdict{Role: rr.Role, Threshold: rr.Threshold, Met: rr.Met(), Keys: make([]KeyRef, 0, len(rr.Counted))}
		for _, c := range rr.Counted {
			rv.Keys = append(rv.Keys, KeyRef{KeyID: c.KeyID, Identity: c.Identity.String(), Keyless: c.Keyless})
		}
		if !rv.Met {
			v.fail(ErrThresholdNotMet, nil, "role %q: %d of %d required signature(s)", rr.Role, len(rr.Counted), rr.Threshold)
		}
		v.Roles = append(v.Roles, rv)
	}
	if len(v.Reasons) == 0 && o.requireLedger && v.Ledger != nil {
		v.Ledger.requireLogged(v, !o.reassembled)
	}
	if len(v.Reasons) > 0 {
		for _, s := range v.Signatures {
			if s.Problem != "" {
				v.fail(s.kind, s.cause, "signature %d (key %s): %s", s.Index, keys.Short(s.KeyID), s.Problem)
			}
		}
		return
	}
	v.Verified = true
}

// checkExpiry refuses a trust root or policy that has expired by now: a
// Trust loaded once and used for many verifications must not outlive its
// metadata.
func (t *Trust) checkExpiry(v *Verdict, now time.Time) {
	if t.Root.Signed.IsExpired(now) {
		v.fail(ErrExpired, nil, "trust root version %d expired at %s", t.Root.Signed.Version, t.Root.Signed.Expires.UTC().Format(time.RFC3339))
	}
	if t.Targets.Signed.IsExpired(now) {
		v.fail(ErrExpired, nil, "policy version %d expired at %s", t.Version(), t.Targets.Signed.Expires.UTC().Format(time.RFC3339))
	}
}

// checkPredicate checks the predicate and returns the policy version it
// was signed under (see [Trust.PolicyAt]), or nil when that version cannot
// be used.
func (t *Trust) checkPredicate(v *Verdict, p *attest.Predicate, req Request, history Source) *PolicyVersion {
	if p.Gate != req.Gate {
		v.fail(ErrWrongGate, nil, "attestation approves gate %q, not gate %q", p.Gate, req.Gate)
	}
	if !req.Now.Before(p.Expires) {
		v.fail(ErrExpired, nil, "attestation expired at %s", p.Expires.UTC().Format(time.RFC3339))
	}
	switch pv := p.Policy.Version; {
	case pv > t.Version():
		v.fail(ErrPolicyMismatch, nil, "attestation was signed under policy version %d, newer than the trusted version %d: update the trust directory", pv, t.Version())
	case pv == t.Version() && p.Policy.Digest["sha256"] != t.Digest:
		v.fail(ErrPolicyMismatch, nil, "attestation names policy version %d with digest sha256:%s, but the trusted version %d has digest sha256:%s", pv, p.Policy.Digest["sha256"], t.Version(), t.Digest)
	default:
		ver, err := t.PolicyAt(history, pv, p.Policy.Digest["sha256"])
		if err != nil {
			v.fail(ErrPolicyMismatch, err, "attestation was signed under policy version %d, which the trusted policy version %d does not vouch for: %v", pv, t.Version(), err)
			return nil
		}
		return ver
	}
	return nil
}

func checkSubjects(v *Verdict, subjects []attest.Subject, artifacts []Artifact) {
	if len(artifacts) == 0 {
		v.fail(ErrInvalidRequest, nil, "no artifact or digest given to check the attestation against")
	}
	for _, a := range artifacts {
		if len(a.Digests) == 0 {
			v.fail(ErrInvalidRequest, nil, "artifact %q: no digest to check", a.Name)
			continue
		}
		found := Covers(subjects, a)
		if !found {
			v.fail(ErrSubjectMismatch, nil, "artifact %q (%s) matches no subject of the attestation", a.Name, a.Digests[0])
		}
	}
}

// Covers reports whether some subject carries every digest of a that it has
// an algorithm for (and at least one).
func Covers(subjects []attest.Subject, a Artifact) bool {
	for _, s := range subjects {
		all, any := true, false
		for _, d := range a.Digests {
			if want, ok := s.Digest[d.Alg]; ok {
				any = true
				all = all && want == d.Hex
			}
		}
		if any && all {
			return true
		}
	}
	return false
}

// countSignatures counts the envelope's signatures against set, the policy
// version the attestation was signed under, applying the latest version's
// revocations and retirements.
func (t *Trust) countSignatures(v *Verdict, set *roles.Set, tally *roles.Tally, env *attest.Envelope, payload []byte, logged map[string]time.Time, verified func(*keys.PublicKey, []byte, []byte) bool) {
	pae := dsse.PAE(env.PayloadType, payload)
	// One digest of the PAE per hash, computed on demand; keys use one or two.
	type paeDigest struct {
		hash crypto.Hash
		sum  []byte
	}
	var buf [2]paeDigest
	digests := buf[:0]
	digest := func(k *keys.PublicKey) []byte {
		for _, c := range digests {
			if c.hash == k.Hash() {
				return c.sum
			}
		}
		d := k.Digest(pae)
		digests = append(digests, paeDigest{k.Hash(), d})
		return d
	}
	check := func(k *keys.PublicKey, raw []byte) error {
		d := digest(k)
		if verified != nil && verified(k, d, raw) {
			return nil
		}
		return k.VerifyDigest(d, raw)
	}
	pre := preverify(set, tally, env, digest, verified)
	v.Signatures = slices.Grow(v.Signatures, len(env.Signatures))
	for i, s := range env.Signatures {
		if keyless.IsKeyID(s.KeyID) {
			v.Signatures = append(v.Signatures, countKeyless(i, s, set, tally, pae, logged))
			continue
		}
		sv := SignatureVerdict{Index: i, KeyID: s.KeyID}
		k, ok := set.Keys[s.KeyID]
		switch {
		case s.KeyID == "":
			sv.refuse(ErrBadSignature, nil, "signature has no keyid")
		case !ok:
			sv.refuse(ErrNotInPolicy, nil, "key is not in the policy")
		}
		if sv.Problem != "" {
			v.Signatures = append(v.Signatures, sv)
			continue
		}
		role, err := tally.Role(k)
		sv.Role = role
		if err != nil {
			sv.refuse(tallyKind(err), err, err.Error())
			v.Signatures = append(v.Signatures, sv)
			continue
		}
		if tally.Has(k) { // refuse before spending a verification on it
			_, err := tally.Add(k)
			sv.refuse(tallyKind(err), err, err.Error())
			v.Signatures = append(v.Signatures, sv)
			continue
		}
		raw, err := attest.DecodeBase64(s.Sig)
		if err != nil {
			sv.refuse(ErrBadSignature, err, "sig is "+err.Error())
			v.Signatures = append(v.Signatures, sv)
			continue
		}
		if pre != nil && pre[i].done {
			err = pre[i].err
		} else {
			err = check(k, raw)
		}
		if err != nil {
			sv.refuse(ErrBadSignature, err, "signature does not verify over the envelope's PAE")
			v.Signatures = append(v.Signatures, sv)
			continue
		}
		if t.Lifecycle != nil && t.applyLifecycle(&sv, k, logged) {
			v.Signatures = append(v.Signatures, sv)
			continue
		}
		if _, err := tally.Add(k); err != nil {
			sv.refuse(tallyKind(err), err, err.Error())
			v.Signatures = append(v.Signatures, sv)
			continue
		}
		sv.Counted = true
		v.Signatures = append(v.Signatures, sv)
	}
}

// preverified is the outcome of one signature's verification by [preverify].
type preverified struct {
	done bool
	err  error
}

// preverify verifies, in parallel on all cores, the signatures that
// countSignatures would verify first for each key identity (known key ID,
// a role in the gate, not yet counted, valid base64): a composite carries
// one signature per key and verification is most of its cost (a
// coordinator checks every composite it emits on its single writer). It
// spends at most one verification per distinct key of the policy that
// countSignatures would not have (a key whose later check refuses it), so
// duplicates still cost nothing. It returns nil when there is nothing to
// share between cores; countSignatures then verifies in order as before.
func preverify(set *roles.Set, tally *roles.Tally, env *attest.Envelope, digest func(*keys.PublicKey) []byte, verified func(*keys.PublicKey, []byte, []byte) bool) []preverified {
	workers := min(runtime.GOMAXPROCS(0), len(env.Signatures))
	if workers < 2 {
		return nil
	}
	type job struct {
		i      int
		k      *keys.PublicKey
		d, raw []byte
	}
	var jobs []job
	seen := map[keys.Identity]bool{}
	for i, s := range env.Signatures {
		if s.KeyID == "" || keyless.IsKeyID(s.KeyID) {
			continue
		}
		k, ok := set.Keys[s.KeyID]
		if !ok || seen[k.Identity()] || tally.Has(k) {
			continue
		}
		if _, err := tally.Role(k); err != nil {
			continue
		}
		raw, err := attest.DecodeBase64(s.Sig)
		if err != nil {
			continue
		}
		seen[k.Identity()] = true
		if d := digest(k); verified == nil || !verified(k, d, raw) {
			jobs = append(jobs, job{i, k, d, raw})
		}
	}
	if len(jobs) < 2 {
		return nil
	}
	out := make([]preverified, len(env.Signatures))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= len(jobs) {
					return
				}
				j := jobs[n]
				out[j.i] = preverified{done: true, err: j.k.VerifyDigest(j.d, j.raw)}
			}
		})
	}
	wg.Wait()
	return out
}

// tallyKind classifies an error of roles.Tally.
// countKeyless counts a keyless signature (see package keyless): its
// certificate must chain to the policy version's Fulcio authorities at the
// time the ledger logged the signature (no logged time, no count), its
// issuer and subject match an identity of a role of the gate, and the
// leaf's key verify the signature. Keyless signers are not in the
// lifecycle's revocations (those name keys); a policy drops an identity to
// stop counting it.
func countKeyless(i int, s attest.Signature, set *roles.Set, tally *roles.Tally, pae []byte, logged map[string]time.Time) SignatureVerdict {
	sv := SignatureVerdict{Index: i, KeyID: s.KeyID}
	at, ok := logged[s.KeyID]
	if !ok {
		sv.refuse(ErrNotLogged, keyless.ErrNotLogged, "keyless signature: no logged time proves when it was made (give the ledger bundle); quorate's ledger is its timestamp")
		return sv
	}
	sv.LoggedAt = at
	cert, err := keyless.Verify(s.KeyID, set.Fulcio, at)
	if err != nil {
		kind := ErrUntrustedCertificate
		if errors.Is(err, keyless.ErrMalformed) {
			kind = ErrBadSignature
		}
		sv.refuse(kind, err, "keyless certificate: "+err.Error())
		return sv
	}
	sv.Keyless = cert.Issuer + "=" + cert.Subject
	role, _, err := tally.KeylessRole(cert.Issuer, cert.Subject)
	sv.Role = role
	if err != nil {
		sv.refuse(ErrNotInGate, err, err.Error())
		return sv
	}
	raw, err := attest.DecodeBase64(s.Sig)
	if err != nil {
		sv.refuse(ErrBadSignature, err, "sig is "+err.Error())
		return sv
	}
	if err := cert.Key.Verify(pae, raw); err != nil {
		sv.refuse(ErrBadSignature, err, "signature does not verify over the envelope's PAE with the certificate's key")
		return sv
	}
	if _, err := tally.AddKeyless(cert.Issuer, cert.Subject); err != nil {
		sv.refuse(tallyKind(err), err, err.Error())
		return sv
	}
	sv.Counted = true
	return sv
}

func tallyKind(err error) *Kind {
	switch {
	case errors.Is(err, roles.ErrCounted):
		return ErrDuplicateKey
	case errors.Is(err, roles.ErrNotInGate):
		return ErrNotInGate
	case errors.Is(err, roles.ErrUnknownGate):
		return ErrUnknownGate
	}
	return ErrInvalidRequest
}
