package ledgerapi

import (
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
)

// Routes registers the ledger's endpoints (GET /v1/log/...) on mux, each
// wrapped by the read-token check. A nil *Server registers them too: they
// answer 404 with ErrNoLedger.
func (c *Server) Routes(mux httpapi.Mux, w httpapi.Wrappers) {
	h, wrap := handlers{c: c, log: w.Logger}, w.Read
	mux.HandleFunc("GET /v1/log/checkpoint", wrap(h.checkpoint))
	mux.HandleFunc("GET /v1/log/entries", wrap(h.entries))
	mux.HandleFunc("GET /v1/log/proof/inclusion", wrap(h.inclusion))
	mux.HandleFunc("GET /v1/log/hashes", wrap(h.hashes))
	mux.HandleFunc("GET /v1/log/proof/consistency", wrap(h.consistency))
}

type handlers struct {
	c   *Server
	log *zap.Logger
}

func (h handlers) checkpoint(w http.ResponseWriter, r *http.Request) {
	size, note, err := h.c.Checkpoint(r.Context(), 0)
	if err != nil {
		httpapi.Fail(h.log, w, r, err)
		return
	}
	note = h.c.cosigned(size, note)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(note)
}

// intParams reads non-negative integer query parameters, answering 400 on failure.
func intParams(w http.ResponseWriter, r *http.Request, names ...string) ([]int64, bool) {
	out := make([]int64, len(names))
	for i, n := range names {
		v, err := strconv.ParseInt(r.URL.Query().Get(n), 10, 64)
		if err != nil || v < 0 {
			httpapi.WriteError(w, http.StatusBadRequest, string(httpapi.KindInvalid), n+": want a non-negative integer")
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// pair answers GET with two integer parameters a and b: get(a, b) as the
// JSON view makes it.
func (h handlers) pair(w http.ResponseWriter, r *http.Request, a, b string, get func(x, y int64) ([][]byte, error), view func(x int64, out [][]byte) any) {
	v, ok := intParams(w, r, a, b)
	if !ok {
		return
	}
	out, err := get(v[0], v[1])
	if err != nil {
		httpapi.Fail(h.log, w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, view(v[0], out))
}

func proofView(_ int64, p [][]byte) any { return client.ProofView{Proof: p} }

func (h handlers) entries(w http.ResponseWriter, r *http.Request) {
	h.pair(w, r, "start", "end", func(x, y int64) ([][]byte, error) { return h.c.Entries(r.Context(), x, y) },
		func(start int64, es [][]byte) any { return client.LogEntriesView{Start: start, Entries: es} })
}

func (h handlers) hashes(w http.ResponseWriter, r *http.Request) {
	h.pair(w, r, "start", "end", func(x, y int64) ([][]byte, error) { return h.c.StoredHashes(r.Context(), x, y) }, proofView)
}

func (h handlers) inclusion(w http.ResponseWriter, r *http.Request) {
	h.pair(w, r, "index", "size", func(x, y int64) ([][]byte, error) { return h.c.InclusionProof(r.Context(), x, y) }, proofView)
}

func (h handlers) consistency(w http.ResponseWriter, r *http.Request) {
	h.pair(w, r, "old", "new", func(x, y int64) ([][]byte, error) { return h.c.ConsistencyProof(r.Context(), x, y) }, proofView)
}
