package signer

import "golang.org/x/time/rate"

// SetBreakGlassLimit replaces a's limit on break-glass ledger appends.
func SetBreakGlassLimit(a *API, l *rate.Limiter) { a.breakGlass = l }
