package signer

import "golang.org/x/time/rate"

// SetBreakGlassLimit replaces a's limit on break-glass ledger appends.
func SetBreakGlassLimit(a *API, l *rate.Limiter) { a.breakGlass = l }

// VerifiedOnArrival returns how many signatures of request id the
// coordinator remembers as verified on arrival (0 when it holds no facts).
func VerifiedOnArrival(s *Coordinator, id string) int {
	s.mu.RLock()
	c := s.cache[id]
	s.mu.RUnlock()
	if c == nil {
		return 0
	}
	return c.verified.len()
}
