package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
)

// LogEvidence is what a verified transparency-log bundle proves about one
// attestation: when the coordinator logged each of its signatures and the
// composite itself. Times are the log's, proven by a checkpoint signed with
// the log key the policy names; a signer's own claim of time is never used.
type LogEvidence struct {
	CheckpointSize int64
	CheckpointTime time.Time
	// Signatures maps a key ID to the logged time of its signature.accepted
	// entry, for signatures present in the envelope byte for byte.
	Signatures map[string]time.Time
	// Emitted is the logged time of the attestation.emitted entry for this
	// exact envelope, or zero.
	Emitted time.Time
}

// CheckBundle verifies a log bundle (ledger.Bundle JSON) against the log
// key of the trusted policy and matches its entries to the envelope: same
// request, same payload, the same signature bytes, the same envelope bytes.
// Entries about anything else are ignored; a bundle that fails to verify
// is an error.
func (t *Trust) CheckBundle(envelope, bundle []byte) (*LogEvidence, error) {
	env, payload, err := attest.ParseEnvelope(envelope, attest.DefaultLimits)
	if err != nil {
		return nil, err
	}
	_, pred, err := attest.ParseStatement(payload, attest.DefaultLimits)
	if err != nil {
		return nil, err
	}
	b, err := ledger.ParseBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("log bundle: %w", err)
	}
	var verified []ledger.VerifiedEntry
	var firstErr error
	for _, lk := range t.bundleKeys(pred) {
		if verified, err = ledger.VerifyBundle(b, lk.Key, lk.Origin); err == nil {
			break
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if verified == nil {
		if firstErr == nil {
			firstErr = ErrNoLogKey
		}
		return nil, fmt.Errorf("log bundle: %w", firstErr)
	}
	sigDigest := map[string]string{}
	for _, s := range env.Signatures {
		if raw, err := attest.DecodeBase64(s.Sig); err == nil {
			sigDigest[s.KeyID] = hexDigest(raw)
		}
	}
	payloadDigest, envDigest := hexDigest(payload), hexDigest(envelope)
	ev := &LogEvidence{Signatures: map[string]time.Time{}}
	for _, v := range verified {
		ev.CheckpointSize, ev.CheckpointTime = v.Checkpoint.Size, v.Checkpoint.Time
		if v.RequestID != pred.RequestID || v.PayloadSHA256 != payloadDigest {
			continue
		}
		switch v.Type {
		case ledger.SignatureAccepted:
			if d, ok := sigDigest[v.KeyID]; ok && d == v.EnvelopeSHA256 {
				ev.Signatures[v.KeyID] = v.Time
			}
		case ledger.AttestationEmitted:
			if v.EnvelopeSHA256 == envDigest {
				ev.Emitted = v.Time
			}
		}
	}
	return ev, nil
}

// bundleKeys are the log keys a bundle for an attestation may be checked
// with: the latest policy's, then the one named by the (endorsed) policy
// version the attestation was signed under — the key the coordinator logged
// it with before a log-key rotation.
func (t *Trust) bundleKeys(pred *attest.Predicate) []*LogKey {
	var out []*LogKey
	if lk, err := t.LogKey(); err == nil {
		out = append(out, lk)
	}
	if pv, err := t.PolicyAt(pred.Policy.Version, pred.Policy.Digest["sha256"]); err == nil && pv.Log != nil {
		if len(out) == 0 || pv.Log.Key.Identity() != out[0].Key.Identity() || pv.Log.Origin != out[0].Origin {
			out = append(out, pv.Log)
		}
	}
	return out
}

// Missing lists, as reasons, what --require-log needs and the evidence
// lacks: a logged time for every counted signature and for the composite.
func (e *LogEvidence) Missing(v *Verdict) []string {
	var out []string
	for _, r := range v.Roles {
		for _, k := range r.Keys {
			if _, ok := e.Signatures[k.KeyID]; !ok {
				out = append(out, fmt.Sprintf("signature by key %s (role %s) is not proven logged by the bundle", keys.Short(k.KeyID), r.Role))
			}
		}
	}
	if e.Emitted.IsZero() {
		out = append(out, "the bundle does not prove this exact attestation was logged")
	}
	return out
}

func hexDigest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// VerifyLogged verifies an envelope together with its transparency-log
// bundle (nil when there is none): the bundle's proven logged times feed
// the revocation and retirement rules. With requireLog, a missing or
// invalid bundle, or one that does not prove every counted signature and
// the attestation itself were logged, makes the verdict fail. Without it,
// a bundle problem is returned as a warning and verification proceeds
// without logged times.
func (t *Trust) VerifyLogged(envelope, bundle []byte, req Request, requireLog bool) (v *Verdict, warning string) {
	var evidence *LogEvidence
	problem := ""
	switch {
	case bundle != nil:
		ev, err := t.CheckBundle(envelope, bundle)
		if err != nil {
			problem = err.Error()
		} else {
			evidence, req.LoggedTimes = ev, ev.Signatures
		}
	case requireLog:
		problem = "no log bundle given: the log is required"
	}
	v = t.VerifyBytes(envelope, req)
	switch {
	case problem != "" && requireLog:
		v.Verified = false
		v.Reasons = append(v.Reasons, problem)
	case problem != "":
		return v, problem
	case evidence != nil && requireLog && v.Verified:
		if missing := evidence.Missing(v); len(missing) > 0 {
			v.Verified = false
			v.Reasons = append(v.Reasons, missing...)
		}
	}
	return v, ""
}
