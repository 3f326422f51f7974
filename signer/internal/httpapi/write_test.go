package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
