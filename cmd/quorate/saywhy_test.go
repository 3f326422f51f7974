package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWrongCoordinatorURL: a URL that is not a quorate coordinator's API (a
// web server's HTML page, a coordinator without the route) is reported in
// one line naming the URL, never as the page; the coordinator's own JSON
// errors are shown as before.
func TestWrongCoordinatorURL(t *testing.T) {
	page := "<!DOCTYPE HTML>\n<html><body><h1>Error response</h1>\n<p>Error code: 404</p></body></html>\n"
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"web server 404 page", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(page))
		}, "quorate: not a quorate coordinator at URL: HTTP 404\n"},
		{"web server 200 page", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(page))
		}, "quorate: not a quorate coordinator at URL? its answer to GET /v1/requests?limit=500 is not the API's JSON: invalid character '<' looking for beginning of value\n"},
		{"coordinator without the route", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Request-Id", "0123456789abcdef")
			http.NotFound(w, nil)
		}, "quorate: coordinator: the coordinator at URL does not serve GET /v1/requests?limit=500 (an older version, or the feature is off) (HTTP 404, not_served)\n"},
		{"coordinator error", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"a read token is required","code":"unauthorized"}`))
		}, "quorate: coordinator: a read token is required (HTTP 401, unauthorized)\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			var stdout, stderr bytes.Buffer
			env := map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "XDG_STATE_HOME": t.TempDir()}
			code := newApp(strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] }).run(context.Background(), []string{"request", "list", "--coordinator", srv.URL})
			if got := strings.ReplaceAll(stderr.String(), srv.URL, "URL"); code != 1 || got != tc.want {
				t.Fatalf("exit %d, stderr\n%q\nwant exit 1 and\n%q", code, got, tc.want)
			}
		})
	}
}
