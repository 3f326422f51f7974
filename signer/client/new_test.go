package client_test

import (
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/signer/client"
)

func TestNew(t *testing.T) {
	// A TLS server with its own CA: reached only when its certificate is
	// given as RootCAs.
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"read token required","code":"unauthorized"}`))
			return
		}
		_, _ = w.Write([]byte("note\n"))
	}))
	t.Cleanup(ts.Close)
	caPEM := pemOf(t, ts)
	cases := []struct {
		name    string
		opts    client.Options
		newErr  string
		callErr string
	}{
		{"not http", client.Options{URL: "ftp://example.com"}, "want an http:// or https:// URL", ""},
		{"no scheme", client.Options{URL: "example.com"}, "want an http:// or https:// URL", ""},
		{"CA bytes without a certificate", client.Options{URL: ts.URL, RootCAs: []byte("hello")}, "no PEM certificate", ""},
		{"private CA not given", client.Options{URL: ts.URL, Token: "s3cret"}, "", "certificate"},
		{"private CA, no token", client.Options{URL: ts.URL, RootCAs: caPEM}, "", "unauthorized"},
		{"private CA and token", client.Options{URL: ts.URL, RootCAs: caPEM, Token: "s3cret", Timeout: 5 * time.Second}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(tc.opts)
			if tc.newErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.newErr) {
					t.Fatalf("New: %v, want %q", err, tc.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Checkpoint(t.Context())
			switch {
			case tc.callErr == "" && err != nil:
				t.Fatalf("call: %v", err)
			case tc.callErr != "" && (err == nil || !strings.Contains(err.Error(), tc.callErr)):
				t.Fatalf("call: %v, want %q", err, tc.callErr)
			}
		})
	}
	if _, err := client.New(client.Options{URL: ts.URL, RootCAs: []byte("x")}); !errors.Is(err, client.ErrNoCertificate) {
		t.Fatalf("err = %v, want ErrNoCertificate", err)
	}
}

func pemOf(t *testing.T, ts *httptest.Server) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
}
