package httpapi

import (
	"net/http"
	"sync"
)

// Mux is where routes are registered: an *http.ServeMux, or a [Recorder]
// in front of one.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
	Handle(pattern string, handler http.Handler)
}

// Recorder registers routes on a mux and remembers their patterns, so the
// routes served can be listed (and compared with api/openapi.yaml).
type Recorder struct {
	Mux *http.ServeMux

	mu       sync.Mutex
	patterns []string
}

// HandleFunc registers handler for pattern.
func (r *Recorder) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, http.HandlerFunc(handler))
}

// Handle registers handler for pattern.
func (r *Recorder) Handle(pattern string, handler http.Handler) {
	r.Mux.Handle(pattern, handler)
	r.mu.Lock()
	r.patterns = append(r.patterns, pattern)
	r.mu.Unlock()
}

// Patterns returns the patterns registered, in order.
func (r *Recorder) Patterns() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.patterns...)
}
