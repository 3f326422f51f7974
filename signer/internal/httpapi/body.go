package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/signer/client"
)

// Decode reads a JSON body strictly; on failure it answers 400 or 413.
// The body is read once into a buffer of its announced size (grown only
// for a body of unknown length) and parsed from there.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := readBody(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, string(KindTooLarge), "request body over "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
			return false
		}
		WriteError(w, http.StatusBadRequest, string(KindInvalid), "reading body: "+err.Error())
		return false
	}
	if err := strictjson.Unmarshal(data, v); err != nil {
		WriteError(w, http.StatusBadRequest, string(KindInvalid), "request body: "+err.Error())
		return false
	}
	return true
}

// readBody reads r's body (already capped by http.MaxBytesReader): into
// one buffer of exactly Content-Length bytes when it is known.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength < 0 {
		return io.ReadAll(r.Body)
	}
	data := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, data); err != nil {
		return nil, err
	}
	return data, nil
}

// ListLimit reads the limit query parameter, answering 400 on failure.
func ListLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return client.DefaultListLimit, true
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > client.MaxListLimit {
		WriteError(w, http.StatusBadRequest, string(KindInvalid), "limit: want a number from 1 to "+strconv.Itoa(client.MaxListLimit))
		return 0, false
	}
	return n, true
}

// ListPage builds one page of a listing as JSON, item by item, stopping
// before the page would exceed its byte cap (always keeping one item).
type ListPage struct {
	max   int
	items []json.RawMessage
	size  int
	last  string // ID of the last item kept
	full  bool   // an item was left out for size
}

// NewListPage starts a page of at most maxBytes.
func NewListPage(maxBytes int) *ListPage { return &ListPage{max: maxBytes} }

// Add appends v (with id) unless the page is full; it reports whether it did.
func (p *ListPage) Add(v any, id string) bool {
	data, err := json.Marshal(v)
	if err != nil || (len(p.items) > 0 && p.size+len(data) > p.max) {
		p.full = true
		return false
	}
	p.items, p.size, p.last = append(p.items, data), p.size+len(data)+1, id
	return true
}

// Write answers the page under key, with "next" (the "after" cursor of
// the next page) when there may be more; more says the source had more rows.
func (p *ListPage) Write(w http.ResponseWriter, key string, more bool) {
	out := map[string]any{key: p.items}
	if p.items == nil {
		out[key] = []json.RawMessage{}
	}
	if (p.full || more) && p.last != "" {
		out["next"] = p.last
	}
	WriteJSON(w, http.StatusOK, out)
}
