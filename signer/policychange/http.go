package policychange

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
)

// Routes registers the policy change endpoints (/v1/policy/changes...) on
// mux with the coordinator API's middleware. A nil *Manager registers them
// too: they answer 404 (the coordinator takes no change requests).
func (m *Manager) Routes(mux httpapi.Mux, w httpapi.Wrappers) {
	h := handlers{m: m, w: w}
	mux.HandleFunc("GET /v1/policy/changes", w.Read(h.list))
	mux.HandleFunc("POST /v1/policy/changes", w.Body(w.MaxProposalBody, h.propose))
	mux.HandleFunc("GET /v1/policy/changes/{id}", w.Read(h.get))
	mux.HandleFunc("POST /v1/policy/changes/{id}/signatures", w.Body(w.MaxSignatureBody, h.approve))
}

type handlers struct {
	m *Manager
	w httpapi.Wrappers
}

func (h handlers) propose(w http.ResponseWriter, r *http.Request) {
	var in client.ProposeInput
	if !httpapi.Decode(w, r, &in) {
		return
	}
	ch, err := h.m.Propose(r.Context(), in)
	if err != nil {
		httpapi.Fail(h.w.Logger, w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/policy/changes/"+ch.ID)
	httpapi.WriteJSON(w, http.StatusCreated, ch)
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	ch, err := h.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		httpapi.Fail(h.w.Logger, w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ch)
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	limit, ok := httpapi.ListLimit(w, r)
	if !ok {
		return
	}
	cs, err := h.m.List(r.Context())
	if err != nil {
		httpapi.Fail(h.w.Logger, w, r, err)
		return
	}
	if after := r.URL.Query().Get("after"); after != "" {
		i := slices.IndexFunc(cs, func(c *client.Change) bool { return c.ID == after })
		if i < 0 {
			httpapi.WriteError(w, http.StatusNotFound, string(httpapi.KindNotFound), "after: no policy change "+strconv.Quote(after))
			return
		}
		cs = cs[i+1:]
	}
	page := httpapi.NewListPage(h.w.MaxListBytes)
	for i, ch := range cs {
		if i == limit || !page.Add(summary(ch), ch.ID) {
			break
		}
	}
	page.Write(w, "changes", len(cs) > limit)
}

func summary(ch *client.Change) client.ChangeSummary {
	s := client.ChangeSummary{ID: ch.ID, State: ch.State, StateReason: ch.StateReason, Proposer: ch.Proposer, BaseVersion: ch.BaseVersion,
		Version: ch.Version, Digest: ch.Digest, Threshold: ch.Threshold, Signed: len(ch.Signatures), Created: ch.Created, Updated: ch.Updated}
	if len(ch.Diff) > 1 {
		s.Summary = ch.Diff[1]
	}
	return s
}

func (h handlers) approve(w http.ResponseWriter, r *http.Request) {
	var sig attest.Signature
	if !httpapi.Decode(w, r, &sig) {
		return
	}
	res, err := h.m.Approve(r.Context(), r.PathValue("id"), sig)
	if err != nil {
		httpapi.Fail(h.w.Logger, w, r, err)
		return
	}
	ch := res.Change
	httpapi.WriteJSON(w, http.StatusCreated, client.ApproveResponse{Accepted: true, Published: res.Published, State: ch.State, Version: ch.Version, Signed: len(ch.Signatures), Threshold: ch.Threshold})
}
