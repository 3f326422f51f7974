package signer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/quorate-dev/quorate/ledger"
)

// LedgerStore is a [Store] that also keeps the transparency log, in the same
// database: a store opened with a ledger.Log appends the events the
// coordinator hands it with each change (built by the *Event functions:
// the events of [Store.CreateRequest], those a [FinishFunc] or [LogFunc]
// returns) in the transaction of that change, exactly as given and in
// order, so the log and the requests never disagree, and records each
// entry's index (Request.LogIndex, Partial.LogIndex, Request.EmittedIndex).
// A store never builds an event of its own.
type LedgerStore interface {
	Store
	// Ledger is a read view of the log.
	Ledger() ledger.Storage
	// PutCheckpoint stores a signed checkpoint of the given tree size.
	PutCheckpoint(ctx context.Context, size int64, note []byte) error
	// LatestCheckpoint returns the signed checkpoint of the largest size
	// stored, or ErrNotFound.
	LatestCheckpoint(ctx context.Context) (size int64, note []byte, err error)
	// AppendEvents appends events that are not request changes (policy
	// published, key revoked) in a transaction of their own.
	AppendEvents(ctx context.Context, events ...ledger.Event) ([]*ledger.Entry, error)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// OpenedEvent is the log event of opening r.
func OpenedEvent(r *Request) ledger.Event {
	return ledger.Event{Type: ledger.RequestOpened, RequestID: r.ID, KeyID: r.Requester, PayloadSHA256: hexSHA256(r.Payload),
		PolicyVersion: r.PolicyVersion, Detail: map[string]string{"gate": r.Gate}}
}

// SignatureEvent is the log event of accepting p on r. Its envelope digest
// is the SHA-256 of the raw signature bytes.
func SignatureEvent(r *Request, p Partial) ledger.Event {
	ev := ledger.Event{Type: ledger.SignatureAccepted, RequestID: r.ID, KeyID: p.KeyID, PayloadSHA256: hexSHA256(r.Payload),
		EnvelopeSHA256: hexSHA256(p.Sig), PolicyVersion: r.PolicyVersion}
	if p.Role != "" {
		ev.Detail = map[string]string{"role": p.Role}
	}
	return ev
}

// EmittedEvent is the log event of emitting r's composite attestation
// (r.Envelope, byte for byte as served).
func EmittedEvent(r *Request) ledger.Event {
	return ledger.Event{Type: ledger.AttestationEmitted, RequestID: r.ID, PayloadSHA256: hexSHA256(r.Payload),
		EnvelopeSHA256: hexSHA256(r.Envelope), PolicyVersion: r.PolicyVersion}
}

// StateEvent is the log event of moving r to a final state (cancelled,
// expired or superseded); reason is the stored state reason (a
// cancellation's names the key that signed it). A superseded request's
// event also names the policy change and version when given them
// ([SupersededEvent]).
func StateEvent(r *Request, to State, reason string) ledger.Event {
	ev := ledger.Event{Type: ledger.RequestExpired, RequestID: r.ID, PayloadSHA256: hexSHA256(r.Payload), PolicyVersion: r.PolicyVersion}
	switch to {
	case Cancelled:
		ev.Type = ledger.RequestCancelled
	case Superseded:
		ev.Type = ledger.RequestSuperseded
	}
	if reason != "" {
		ev.Detail = map[string]string{"reason": reason}
	}
	return ev
}

// CreatedEvents are the events of opening r, as [Store.CreateRequest]
// takes them: request.opened, a signature.accepted per signature and, when
// r is already complete, attestation.emitted.
func CreatedEvents(r *Request) []ledger.Event {
	events := make([]ledger.Event, 0, len(r.Signatures)+2)
	events = append(events, OpenedEvent(r))
	for _, p := range r.Signatures {
		events = append(events, SignatureEvent(r, p))
	}
	if r.State == Complete {
		events = append(events, EmittedEvent(r))
	}
	return events
}

// Finished is the [Finish] of adding the last of r's signatures: its
// signature.accepted and, with env (the composite: r becomes complete),
// attestation.emitted.
func Finished(r *Request, env []byte) Finish {
	if len(r.Signatures) == 0 {
		return Finish{Envelope: env} // refused by the store: no signature event
	}
	f := Finish{Events: []ledger.Event{SignatureEvent(r, r.Signatures[len(r.Signatures)-1])}}
	if len(env) > 0 {
		done := *r
		done.Envelope = env
		f.Envelope = env
		f.Events = append(f.Events, EmittedEvent(&done))
	}
	return f
}

// LogState is the [LogFunc] of a move to a final state: the state's event
// ([StateEvent]) with the stored reason.
func LogState(r *Request) ([]ledger.Event, error) {
	return []ledger.Event{StateEvent(r, r.State, r.StateReason)}, nil
}

// SupersededEvent is the log event of policy change changeID, published as
// policy version version, superseding r (reason: the stored state reason).
func SupersededEvent(r *Request, changeID string, version int64, reason string) ledger.Event {
	ev := StateEvent(r, Superseded, reason)
	if ev.Detail == nil {
		ev.Detail = map[string]string{}
	}
	ev.Detail["change"] = changeID
	ev.Detail["policy_version"] = strconv.FormatInt(version, 10)
	return ev
}
