package signer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/quorate-dev/quorate/ledger"
)

// LedgerStore is a [Store] that also keeps the transparency log, in the same
// database: a store opened with a ledger.Log appends the events of each
// change (see the *Event functions) in the transaction of that change, so
// the log and the requests never disagree, and records each entry's index
// (Request.LogIndex, Partial.LogIndex, Request.EmittedIndex).
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

// StateEvent is the log event of moving r to a final state (cancelled or
// expired); reason is the stored state reason (a cancellation's names the
// key that signed it).
func StateEvent(r *Request, to State, reason string) ledger.Event {
	ev := ledger.Event{Type: ledger.RequestExpired, RequestID: r.ID, PayloadSHA256: hexSHA256(r.Payload), PolicyVersion: r.PolicyVersion}
	if to == Cancelled {
		ev.Type = ledger.RequestCancelled
	}
	if reason != "" {
		ev.Detail = map[string]string{"reason": reason}
	}
	return ev
}
