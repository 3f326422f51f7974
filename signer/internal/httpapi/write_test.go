package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/quorate-dev/quorate/signer/client"
)

// TestFailNilLogger: a handler handed no logger (a sub-package's
// Wrappers{} or tufrepo.Handler(repo, nil)) still answers, never panics.
func TestFailNilLogger(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		hidden string // must not reach the client
	}{
		{"internal error", errors.New("disk on fire at /var/lib/quorate"), http.StatusInternalServerError, string(KindInternal), "disk on fire"},
		{"refusal", Errorf(KindNotFound, "request r1 not found"), http.StatusNotFound, string(KindNotFound), ""},
		{"unavailable", Errorf(KindUnavailable, "store down"), http.StatusServiceUnavailable, string(KindUnavailable), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := WithRequestID(httptest.NewRequest("GET", "/v1/requests/r1", nil), "rid-7")
			Fail(nil, rec, r, tc.err)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			var body client.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Code != tc.code {
				t.Fatalf("code %q, want %q", body.Code, tc.code)
			}
			if tc.hidden != "" && (strings.Contains(body.Error, tc.hidden) || !strings.Contains(body.Error, "rid-7")) {
				t.Fatalf("internal error answered %q: want the request ID, not the message", body.Error)
			}
		})
	}
}

// TestFailLogsInternal: with a logger, the internal error's message is
// logged with the request ID.
func TestFailLogsInternal(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	rec := httptest.NewRecorder()
	r := WithRequestID(httptest.NewRequest("GET", "/v1/log/checkpoint", nil), "rid-9")
	Fail(zap.New(core), rec, r, errors.New("disk on fire"))
	es := logs.FilterMessage("internal error").All()
	if len(es) != 1 || es[0].ContextMap()["rid"] != "rid-9" || !strings.Contains(es[0].ContextMap()["error"].(string), "disk on fire") {
		t.Fatalf("logged %+v", logs.All())
	}
}

// TestWriteJSONIsCompactJSON: pooled encoders answer exactly what
// json.Marshal gives, a newline after, from many goroutines at once;
// a value that cannot be encoded is an internal error, never half a body.
func TestWriteJSONIsCompactJSON(t *testing.T) {
	values := []any{
		client.ErrorBody{Error: `<b>"quoted"</b> & \ é`, Code: "invalid"},
		map[string]any{"n": 1, "list": []string{"a", "b"}, "nested": map[string]int{"z": 1, "a": 2}},
		strings.Repeat("x", 100<<10), // grows the buffer past what the pool keeps
		[]int{},
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				for _, v := range values {
					rec := httptest.NewRecorder()
					WriteJSON(rec, http.StatusTeapot, v)
					want, err := json.Marshal(v)
					if err != nil {
						t.Error(err)
						return
					}
					if got := rec.Body.String(); got != string(want)+"\n" || rec.Code != http.StatusTeapot {
						t.Errorf("WriteJSON(%T) = %d %q, want %q", v, rec.Code, got, string(want)+"\n")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
	var body client.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusInternalServerError || body.Code != string(KindInternal) {
		t.Errorf("unencodable value answered %d %q (%v)", rec.Code, rec.Body.String(), err)
	}
}
