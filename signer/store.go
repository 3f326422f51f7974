package signer

import (
	"context"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/storeerr"
)

// Request is a signing request: the fixed payload every party signs, the
// partial signatures accepted so far and, once complete, the composite
// attestation.
type Request struct {
	ID            string           `json:"id"`
	Gate          string           `json:"gate"`
	PolicyVersion int64            `json:"policyVersion"`
	PolicyDigest  string           `json:"policyDigest"`
	PayloadType   string           `json:"payloadType"`
	Payload       []byte           `json:"payload"` // the in-toto Statement, exactly as signed
	Subjects      []attest.Subject `json:"subjects"`
	Requester     string           `json:"requester"` // key ID that opened the request
	Created       time.Time        `json:"created"`   // coordinator time
	Expires       time.Time        `json:"expires"`
	State         State            `json:"state"`
	StateReason   string           `json:"stateReason,omitempty"`
	// Updated is the request's last change: its state's, or while it is
	// pending its latest signature's time if later.
	Updated    time.Time `json:"updated"`
	Signatures []Partial `json:"signatures"`
	Envelope   []byte    `json:"envelope,omitempty"` // composite DSSE envelope, when complete
	// LogIndex and EmittedIndex are the transparency-log indexes of the
	// request.opened and attestation.emitted entries; they mean something
	// only in a [LedgerStore] opened with a log.
	LogIndex     int64 `json:"logIndex"`
	EmittedIndex int64 `json:"emittedIndex"`
}

// SignedBy returns the accepted signature of the key identity, nil when
// it has not signed r (an identity signs a request at most once).
func (r *Request) SignedBy(identity string) *Partial {
	for i := range r.Signatures {
		if r.Signatures[i].Identity == identity {
			return &r.Signatures[i]
		}
	}
	return nil
}

// Partial is one accepted partial signature.
type Partial struct {
	KeyID    string    `json:"keyid"`
	Identity string    `json:"identity"` // hex SHA-256 of the key's SPKI: unique per request
	Role     string    `json:"role"`
	Sig      []byte    `json:"sig"`
	Received time.Time `json:"received"` // coordinator time
	// LogIndex is the index of the signature.accepted entry (LedgerStore only).
	LogIndex int64 `json:"logIndex"`
}

// State is a signing request's state (as the API shows it).
type State = client.State

// Request states. Only a pending request accepts signatures; the others are final.
const (
	Pending   = client.Pending
	Complete  = client.Complete
	Cancelled = client.Cancelled
	Expired   = client.Expired
	// Superseded: a policy change published with "supersede pending
	// requests" ended it (see [Supersession]).
	Superseded = client.Superseded
)

// ListOptions filter [Store.ListRequests].
type ListOptions struct {
	State State // "" for every state
	// ExpiresBefore, when set, keeps requests expiring before it.
	ExpiresBefore time.Time
	// Limit caps the result (0 means 100).
	Limit int
	// After continues a listing after this request ID (IDs are listed in
	// creation order, ties broken by ID).
	After string
	// Summary lists requests without their Payload, Subjects and Envelope
	// (left nil), which a store should then not even read: a listing of
	// many large requests stays small.
	Summary bool
}

// PendingReader is implemented by a [Store] that reads several pending
// requests in one go: what a round of webhook deliveries needs to say who
// each request waits on (see [WaitingStatus.PrepareStatus]).
type PendingReader interface {
	// PendingRequests returns the requests among ids that are pending, as
	// ListRequests with Summary returns them (no Payload, Subjects or
	// Envelope) and with their signatures, in no particular order; an ID
	// of no pending request is left out.
	PendingRequests(ctx context.Context, ids []string) ([]*Request, error)
}

// FinishFunc is called inside [Store.AddSignature]'s transaction with the
// request as stored, the new signature included. It returns the
// coordinator's decision: whether the request is now complete, and the
// ledger events that record the step.
type FinishFunc func(r *Request) (Finish, error)

// Finish is a [FinishFunc]'s decision. The store applies it as given: it
// never builds a ledger event itself, so what the log says is what the
// coordinator decided, whatever the store.
type Finish struct {
	// Envelope is the composite envelope when the request is now
	// complete; nil leaves it pending.
	Envelope []byte
	// Events are the ledger events the store appends, in this order, in
	// the same transaction (a store without a ledger drops them): exactly
	// the new signature's signature.accepted (its entry's index becomes
	// that signature's Partial.LogIndex) and, with Envelope, then
	// attestation.emitted (Request.EmittedIndex), each naming the request
	// (see [SignatureEvent], [EmittedEvent]). Any other shape is refused
	// and nothing is stored.
	Events []ledger.Event
}

// LogFunc returns the ledger events recording a change of request r,
// called inside the store's transaction with r as it is after the change
// (see [Store.SetState]).
type LogFunc func(r *Request) ([]ledger.Event, error)

// Supersession ends pending requests as part of publishing a policy change
// whose administrators asked for it (policychange.Store.UpdateChange runs
// it in the publication's transaction): every request of Gates still
// pending and opened under a policy version before OpenedBefore becomes
// Superseded with Reason at At, and the events Logged returns for each
// (the request as superseded; see [SupersededEvent]) are appended after the
// publication's own, in creation order of the requests.
type Supersession struct {
	Gates        []string
	OpenedBefore int64
	Reason       string
	At           time.Time
	Logged       LogFunc
}

// ChangeUpdate is what a policy change's update function
// (policychange.Store.UpdateChange) asks the store to record with the
// change, in the same transaction.
type ChangeUpdate struct {
	// Events are appended to the ledger, in order (dropped by a store
	// without a ledger).
	Events []ledger.Event
	// Supersede, when set, ends pending requests (see [Supersession]).
	Supersede *Supersession
}

// Store errors. Implementations wrap them so errors.Is works.
var (
	ErrNotFound    = storeerr.ErrNotFound
	ErrExists      = storeerr.ErrExists
	ErrDuplicate   = storeerr.ErrDuplicate
	ErrNotPending  = storeerr.ErrNotPending
	ErrUnavailable = storeerr.ErrUnavailable
)

// Store persists requests. Every method is safe for concurrent use, and a
// method that returns without error has made its change durable: a process
// killed afterwards loses nothing. Implementations must pass
// signertest.TestStore.
type Store interface {
	// CreateRequest stores a new pending request with its first signature
	// (the requester's), and appends events to the ledger in the same
	// transaction, in order: request.opened (its index becomes
	// r.LogIndex), one signature.accepted per r.Signatures in order
	// (their Partial.LogIndex) and, when r is Complete, attestation.emitted
	// (r.EmittedIndex), each naming r (see [OpenedEvent]). It fails with
	// ErrExists when the ID is taken, and refuses events of another shape.
	CreateRequest(ctx context.Context, r *Request, events []ledger.Event) error
	// GetRequest returns a request with its signatures, or ErrNotFound.
	GetRequest(ctx context.Context, id string) (*Request, error)
	// GetRequestRow returns a request as GetRequest does but without its
	// signatures (Signatures nil), which it does not read, or ErrNotFound:
	// what serving a composite attestation or a signature's checks need.
	GetRequestRow(ctx context.Context, id string) (*Request, error)
	// ListRequests lists requests (with signatures) in creation order.
	ListRequests(ctx context.Context, opts ListOptions) ([]*Request, error)
	// CountRequests counts the requests in a state ("" for every state)
	// without reading them.
	CountRequests(ctx context.Context, state State) (int64, error)
	// AddSignature records p on request id atomically with finish's
	// decision: the request must be pending (else ErrNotPending), and no
	// signature with p.Identity may exist (else ErrDuplicate). When finish
	// returns an envelope the request becomes Complete in the same
	// transaction, so a composite is emitted exactly once however many
	// signatures race; the events finish returns are appended in that
	// transaction too (see [Finish]). If finish fails or returns events of
	// another shape, nothing is stored: neither the signature nor an event.
	AddSignature(ctx context.Context, id string, p Partial, finish FinishFunc) (*Request, error)
	// SetState moves a pending request to a final state (Cancelled or
	// Expired; Superseded only comes with a policy change, see
	// [Supersession]), or fails with ErrNotPending, and appends the events logged
	// returns (called in the transaction with the request in its new
	// state; each must name the request, and there must be at least one:
	// see [StateEvent]). If logged fails nothing is stored.
	SetState(ctx context.Context, id string, to State, reason string, at time.Time, logged LogFunc) (*Request, error)
	// TrustedVersions returns the highest root and policy (targets)
	// versions the coordinator has trusted, as recorded by
	// RaiseTrustedVersions (zero when none): the database's memory against
	// a rollback of the trust directory, shared by replicas.
	TrustedVersions(ctx context.Context) (policy.Trusted, error)
	// RaiseTrustedVersions records t, keeping for each version the higher
	// of t's and the one recorded (never lowering it), atomically, and
	// returns what is recorded afterwards.
	RaiseTrustedVersions(ctx context.Context, t policy.Trusted) (policy.Trusted, error)
	// Close releases the store.
	Close() error
}
