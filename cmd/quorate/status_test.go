package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestStatusNotACoordinator: a URL that is some other web server (an HTML
// 404 page) is reported in one line, never as the page.
func TestStatusNotACoordinator(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html><body><h1>Not Found</h1></body></html>"))
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, url, reason, message string
	}{
		{name: "web server that is not a coordinator", url: srv.URL, reason: "not_a_coordinator", message: "not a quorate coordinator: HTTP 404"},
		{name: "nothing listening", url: closed, reason: "unreachable", message: "not reachable: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := pollReady(context.Background(), srv.Client(), tc.url, "", 0, false)
			if st.Ready || st.Reason != tc.reason || st.Message != tc.message {
				t.Fatalf("status %+v, want reason %q, message %q", st, tc.reason, tc.message)
			}
		})
	}
}
