// Package storeerr holds the errors a coordinator store returns and their
// mapping to API error kinds, shared by the coordinator (signer) and the
// ledger's serving side (signer/ledgerapi). signer re-exports the errors.
package storeerr

import (
	"context"
	"errors"

	"github.com/quorate-dev/quorate/signer/internal/httpapi"
)

// Errors a store returns (signer.ErrNotFound and friends are these).
var (
	ErrNotFound    = errors.New("request not found")
	ErrExists      = errors.New("request already exists")
	ErrDuplicate   = errors.New("key has already signed this request")
	ErrNotPending  = errors.New("request is not pending")
	ErrUnavailable = errors.New("store unavailable") // retryable
)

// Kinded returns err from a store as an API error of the right kind, for
// the request id ("" for none).
func Kinded(err error, id string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return httpapi.Errorf(httpapi.KindNotFound, "request %s not found", id)
	case errors.Is(err, ErrExists):
		return httpapi.Errorf(httpapi.KindDuplicate, "request %s already exists", id)
	case errors.Is(err, ErrDuplicate):
		return httpapi.Errorf(httpapi.KindDuplicate, "this key (or the same public key under another key ID) has already signed request %s", id)
	case errors.Is(err, ErrNotPending):
		return httpapi.Errorf(httpapi.KindNotPending, "request %s is no longer pending: %w", id, err)
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return httpapi.Errorf(httpapi.KindUnavailable, "store unavailable: %w", err)
	case errors.Is(err, context.Canceled):
		return httpapi.Errorf(httpapi.KindUnavailable, "request cancelled by the client")
	}
	var se *httpapi.Error
	if errors.As(err, &se) {
		return se
	}
	return &httpapi.Error{Kind: httpapi.KindInternal, Msg: "internal error storing request " + id, Err: err}
}
