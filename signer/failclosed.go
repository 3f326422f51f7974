package signer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// This file holds the coordinator's fail-closed checks: an expired policy,
// a store that cannot write, a composite the verifier would reject, and
// write endpoints that do not reveal whether a request exists.

// DefaultWriteFailureWindow is the default of [Config.WriteFailureWindow].
const DefaultWriteFailureWindow = 30 * time.Second

// failState is the fail-closed state a [Coordinator] keeps.
type failState struct {
	// hide makes write endpoints answer an unknown request exactly as a
	// known one the caller may not touch (see hideExistence).
	hide atomic.Bool
	// writeErr is the last store write failure, cleared by a write that
	// succeeds.
	writeErr atomic.Pointer[writeFailure]
	// expired is set once the enforced policy has been seen expired (it is
	// logged once per policy version).
	expired atomic.Int64
}

type writeFailure struct {
	at  time.Time
	err error
}

// hideExistence makes the write endpoints (signatures, cancellations)
// answer a request ID that does not exist exactly as one that exists but
// that the caller has not proven it may touch: a signature that is not a
// valid signature, over that request's payload (or cancellation message),
// by a key of a role of its gate (or an administrator, for a cancel). The
// HTTP API turns it on when reads need a token, so that the write endpoints
// are no oracle for request IDs.
func (s *Coordinator) hideExistence(on bool) { s.fail.hide.Store(on) }

// errNoSuchRequest is the one answer, with hiding on, to a write for a
// request the caller may not touch, whether or not it exists. It names
// nothing the caller did not send, so the bodies are byte-identical.
func errNoSuchRequest(string) error {
	return errorf(KindNotFound, "no such request, or the signature is not a valid signature over it by a key allowed to act on it")
}

// checkPolicyFresh refuses, with [KindPolicyExpired], to act under a policy
// (or trust root) that has expired at now. The first refusal under a
// policy version is logged as an error; every refusal is counted.
func (s *Coordinator) checkPolicyFresh(t *policy.Trust, now time.Time) error {
	err := policyExpiry(t, now)
	if err == nil {
		s.metrics.setPolicyExpired(false)
		return nil
	}
	s.metrics.policyExpiredRefusal()
	if s.fail.expired.Swap(t.Version()) != t.Version() {
		s.log.Error("the enforced policy has expired: refusing to open requests, accept signatures or emit attestations until a renewed policy is loaded",
			zap.Int64("policyVersion", t.Version()), zap.Int64("rootVersion", t.Root.Signed.Version), zap.Error(err))
	}
	return err
}

// policyExpiry returns a [KindPolicyExpired] error when t's root or
// targets has expired at now. It records nothing.
func policyExpiry(t *policy.Trust, now time.Time) error {
	switch {
	case t.Root.Signed.IsExpired(now):
		return errorf(KindPolicyExpired, "the coordinator's trust root version %d expired at %s: it refuses every signing operation until a renewed root and policy are loaded",
			t.Root.Signed.Version, t.Root.Signed.Expires.UTC().Format(time.RFC3339))
	case t.Targets.Signed.IsExpired(now):
		return errorf(KindPolicyExpired, "the coordinator's policy version %d expired at %s: it refuses every signing operation until a renewed policy is loaded",
			t.Version(), t.Targets.Signed.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// wrote records the outcome of a store write: a failure that is not the
// request's own fault (the store is unavailable, or failed unexpectedly)
// makes [Coordinator.Ready] fail until a write succeeds or
// [Config.WriteFailureWindow] passes without another failure.
func (s *Coordinator) wrote(err error) {
	if err == nil {
		if s.fail.writeErr.Swap(nil) != nil {
			s.metrics.setWriteFailing(false)
			s.log.Info("store writes succeed again")
		}
		return
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrDuplicate), errors.Is(err, ErrNotPending),
		errors.Is(err, context.Canceled):
		return
	}
	var se *Error
	if errors.As(err, &se) && se.Kind != KindInternal && se.Kind != KindUnavailable {
		return // refused by the service's own checks inside the transaction
	}
	if errors.As(err, &se) && se.Kind == KindInternal && errors.Is(err, errCompositeRefused) {
		return // the store wrote nothing because the service refused, not because it failed
	}
	s.metrics.writeFailed()
	if s.fail.writeErr.Swap(&writeFailure{at: s.cfg.Clock(), err: err}) == nil {
		s.log.Error("store write failed: reporting not ready", zap.Error(err))
	}
}

// Ready reports whether the coordinator can do its job, for /readyz: the
// enforced policy has not expired, and the store's writes have not failed
// recently (see [Config.WriteFailureWindow]), and the transparency log
// still extends the last checkpoint signed ([ledgerapi.Server.Fault]). Whether
// the store answers reads is for [HTTPConfig.Ready] to check.
func (s *Coordinator) Ready(context.Context) error {
	if err := s.ledger.Fault(); err != nil {
		return err
	}
	now := s.cfg.Clock()
	t := s.Trust()
	if err := policyExpiry(t, now); err != nil {
		s.metrics.setPolicyExpired(true)
		return err
	}
	s.metrics.setPolicyExpired(false)
	if f := s.fail.writeErr.Load(); f != nil && now.Sub(f.at) < s.cfg.WriteFailureWindow {
		return fmt.Errorf("store writes are failing (last failure at %s): %w", f.at.UTC().Format(time.RFC3339), f.err)
	}
	return nil
}

// errCompositeRefused marks a composite the verifier would reject.
var errCompositeRefused = errors.New("composite attestation refused")

// checkComposite verifies env exactly as a verifier holding t would, for
// r's gate and subjects at now, and refuses (with an internal error that
// leaves the request pending) an envelope that does not verify or carries
// a signature that does not verify: a stored partial signature was altered
// after it was accepted. A signature memo says verified on arrival, with
// the same key over the same PAE and with the same bytes, is not verified
// again (policy.WithVerifiedSignatures): one altered since has other bytes.
func (s *Coordinator) checkComposite(t *policy.Trust, r *Request, env []byte, now time.Time, memo *verifiedMemo) error {
	arts := make([]policy.Artifact, 0, len(r.Subjects))
	for _, sub := range r.Subjects {
		a := policy.Artifact{Name: sub.Name}
		for alg, hex := range sub.Digest {
			a.Digests = append(a.Digests, attest.Digest{Alg: alg, Hex: hex})
		}
		arts = append(arts, a)
	}
	// WithHistory: a request signed under an earlier policy version.
	// The signatures' logged times are the coordinator's: each was logged
	// (signature.accepted) when it was received. Keyless signatures count
	// only with one.
	logged := make(map[string]time.Time, len(r.Signatures))
	for _, p := range r.Signatures {
		logged[p.KeyID] = p.Received
	}
	opts := []policy.VerifyOption{policy.WithHistory(t.Source())}
	if memo != nil {
		opts = append(opts, policy.WithVerifiedSignatures(memo.has))
	}
	v := t.VerifyBytes(env, policy.Request{Gate: r.Gate, Artifacts: arts, Now: now, Limits: s.cfg.Limits, LoggedTimes: logged}, opts...)
	var problems []string
	for _, sv := range v.Signatures {
		if sv.Problem != "" {
			problems = append(problems, fmt.Sprintf("key %s: %s", sv.KeyID, sv.Problem))
		}
	}
	if (v.Verified || onlyReferencedProvenance(v)) && len(problems) == 0 {
		return nil
	}
	for _, r := range v.Reasons {
		problems = append(problems, r.Message)
	}
	s.metrics.compositeRefused()
	s.metrics.tamper(gateLabel(t, r.Gate), tamperComposite)
	s.log.Error("refusing to emit a composite attestation the verifier would reject; the request stays pending (were stored signatures altered?)",
		zap.String("request", r.ID), zap.Strings("problems", problems))
	return &Error{Kind: KindInternal, Msg: "internal error: refusing to emit the composite attestation of request " + r.ID,
		Err: fmt.Errorf("%w: request %s: %s", errCompositeRefused, r.ID, strings.Join(problems, "; "))}
}

// onlyReferencedProvenance reports whether v failed only because the
// attestation references provenance the coordinator was not given (the
// verifiers that hold the file check it).
func onlyReferencedProvenance(v *policy.Verdict) bool {
	for _, r := range v.Reasons {
		if !errors.Is(r, policy.ErrProvenanceNotSupplied) {
			return false
		}
	}
	return len(v.Reasons) > 0
}

// checkCancelReason refuses a cancellation reason that is not one line of
// printable text of at most [MaxCancelReason] bytes: the reason is shown to
// parties and recorded in the transparency log.
func checkCancelReason(reason string) error {
	if len(reason) > client.MaxCancelReason {
		return errorf(KindInvalid, "reason is %d bytes long (at most %d)", len(reason), client.MaxCancelReason)
	}
	if err := attest.CheckFreeText("reason", reason); err != nil {
		return errorf(KindInvalid, "%w", err)
	}
	if i := strings.IndexAny(reason, "\n\t"); i >= 0 {
		return errorf(KindInvalid, "reason: U+%04X at offset %d: a cancellation reason is one line of text, without newline or tab", reason[i], i)
	}
	return nil
}
