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

	independent *IndependentEvidence // cosignatures and timestamps (see checkIndependent)
}

// checkLedgerBundle verifies a ledger bundle (ledger.Bundle JSON) against
// the log key of the trusted policy (or of the policy version pred names,
// read through history) and matches its entries to the envelope, already
// parsed from data: same request, same payload, the same signature bytes,
// the same envelope bytes. Entries about anything else are ignored; a
// bundle that fails to verify is an error.
func (t *Trust) checkLedgerBundle(envelope []byte, env *attest.Envelope, payload []byte, pred *attest.Predicate, bundle []byte, history Source) (*LogEvidence, error) {
	b, err := ledger.ParseBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("log bundle: %w", err)
	}
	var verified []ledger.VerifiedEntry
	var firstErr error
	for _, lk := range t.bundleKeys(pred, history) {
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
	ind, err := t.checkIndependent(b, verified[0].Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("log bundle: %w", err)
	}
	ev := &LogEvidence{Signatures: map[string]time.Time{}, independent: ind}
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
func (t *Trust) bundleKeys(pred *attest.Predicate, history Source) []*LogKey {
	var out []*LogKey
	if lk, err := t.LogKey(); err == nil {
		out = append(out, lk)
	}
	if pv, err := t.PolicyAt(history, pred.Policy.Version, pred.Policy.Digest["sha256"]); err == nil && pv.Log != nil {
		if len(out) == 0 || pv.Log.Key.Identity() != out[0].Key.Identity() || pv.Log.Origin != out[0].Origin {
			out = append(out, pv.Log)
		}
	}
	return out
}

// requireLogged fails v, with [ErrNotLogged], for what [RequireLedger]
// needs and the evidence lacks: a logged time for every counted signature
// and, when emitted is set, for the composite.
func (e *LogEvidence) requireLogged(v *Verdict, emitted bool) {
	for _, r := range v.Roles {
		for _, k := range r.Keys {
			if k.Keyless {
				continue // counted only with a logged time (countKeyless)
			}
			if _, ok := e.Signatures[k.KeyID]; !ok {
				v.fail(ErrNotLogged, nil, "signature by key %s (role %s) is not proven logged by the bundle", keys.Short(k.KeyID), r.Role)
			}
		}
	}
	if emitted && e.Emitted.IsZero() {
		v.fail(ErrNotLogged, nil, "the bundle does not prove this exact attestation was logged")
	}
}

func hexDigest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
