package signer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

// rawPost posts body to w's server and returns the status and Retry-After.
func rawPost(t *testing.T, w *world, path string, body io.Reader, length int64) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+path, body)
	must(t, err)
	req.ContentLength = length
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func TestBodyCapsPerEndpoint(t *testing.T) {
	w := newWorld(t, func(c *signer.HTTPConfig) { c.MaxBody = 1 << 20 })
	big := `{"keyid":"` + strings.Repeat("A", 70<<10) + `"}`
	cases := []struct {
		name, path string
		length     int64 // -1: chunked, length unknown
		want       int
	}{
		{"signature over 64 KiB", "/v1/requests/x/signatures", int64(len(big)), http.StatusRequestEntityTooLarge},
		{"signature over 64 KiB chunked", "/v1/requests/x/signatures", -1, http.StatusRequestEntityTooLarge},
		{"cancellation over 64 KiB", "/v1/requests/x/cancel", int64(len(big)), http.StatusRequestEntityTooLarge},
		{"approval over 64 KiB", "/v1/policy/changes/x/signatures", int64(len(big)), http.StatusRequestEntityTooLarge},
		{"open request under its own cap", "/v1/requests", int64(len(big)), http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := rawPost(t, w, c.path, strings.NewReader(big), c.length); got != c.want {
				t.Fatalf("POST %s with %d bytes: %d, want %d", c.path, len(big), got, c.want)
			}
		})
	}
}

// postFrom posts body to w's server from local address ip and returns
// the status and Retry-After.
func postFrom(t *testing.T, w *world, ip string, body string) (int, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	cl := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer cl.CloseIdleConnections()
	resp, err := cl.Post(w.srv.URL+"/v1/requests", "application/json", strings.NewReader(body))
	must(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func TestInFlightBodyBytesCap(t *testing.T) {
	cases := []struct {
		name               string
		budget, perClient  int64
		otherClientRefused bool
	}{
		// 80 KiB held of 100: a 40 KiB body waits, then gets 503, whoever sends it.
		{"whole budget", 100 << 10, 100 << 10, true},
		// 80 KiB held by one client with a 100 KiB share of 1 MiB: that
		// client is refused, another is served.
		{"per-client share", 1 << 20, 100 << 10, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, func(cfg *signer.HTTPConfig) {
				cfg.MaxBody, cfg.MaxInFlight, cfg.MaxInFlightPerClient, cfg.InFlightWait = 1<<20, c.budget, c.perClient, 20*time.Millisecond
			})
			// A slow client (127.0.0.1) announces 80 KiB and sends only
			// part of it: its reservation holds while the handler waits
			// for the rest.
			pr, pw := io.Pipe()
			done := make(chan struct{})
			go func() {
				defer close(done)
				req, err := http.NewRequest(http.MethodPost, w.srv.URL+"/v1/requests", pr)
				if err != nil {
					return
				}
				req.ContentLength = 80 << 10
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			_, _ = pw.Write([]byte(`{"payload":"`))
			body := `{"payload":"` + strings.Repeat("A", 40<<10) + `"}`
			refused := false
			for range 500 {
				code, retry := postFrom(t, w, "127.0.0.1", body)
				if code == http.StatusServiceUnavailable {
					if retry == "" {
						t.Fatal("503 for a full in-flight budget without Retry-After")
					}
					refused = true
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !refused {
				t.Fatal("the slow client's second 40 KiB body was never refused with 503")
			}
			code, _ := postFrom(t, w, "127.0.0.2", body)
			if got := code == http.StatusServiceUnavailable; got != c.otherClientRefused {
				t.Fatalf("another client's 40 KiB body: %d (refused %v, want %v)", code, got, c.otherClientRefused)
			}
			pw.CloseWithError(io.ErrUnexpectedEOF)
			<-done
			for range 500 {
				code, _ := postFrom(t, w, "127.0.0.1", body)
				if code != http.StatusServiceUnavailable {
					if code != http.StatusBadRequest {
						t.Fatalf("after the slow body ended: %d, want 400 (read and refused as invalid)", code)
					}
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Fatal("the in-flight budget was never released after the slow body ended")
		})
	}
}

func TestListSummariesAndPages(t *testing.T) {
	w := newWorld(t, func(c *signer.HTTPConfig) { c.MaxListBytes = 900 })
	var want []string
	for range 5 {
		v, _ := w.open("staging", w.dev)
		want = append(want, v.ID)
	}
	get := func(query string) (int, map[string]json.RawMessage) {
		resp, err := http.Get(w.srv.URL + "/v1/requests" + query)
		must(t, err)
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	t.Run("summaries have no payload", func(t *testing.T) {
		code, out := get("?limit=1")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/requests?limit=1: %d", code)
		}
		var items []map[string]any
		must(t, json.Unmarshal(out["requests"], &items))
		if len(items) != 1 {
			t.Fatalf("limit=1 gave %d items", len(items))
		}
		for _, field := range []string{"payload", "subjects", "envelope", "signatures"} {
			if _, ok := items[0][field]; ok {
				t.Errorf("listed summary has %q", field)
			}
		}
		if items[0]["id"] != want[0] || items[0]["progress"] == nil {
			t.Errorf("summary %v, want id %s with progress", items[0], want[0])
		}
		if string(out["next"]) != `"`+want[0]+`"` {
			t.Errorf("next = %s, want %q", out["next"], want[0])
		}
	})
	t.Run("pages follow the cursor within the byte cap", func(t *testing.T) {
		var got []string
		after, pages := "", 0
		for pages = 1; pages < 20; pages++ {
			q := "?limit=500"
			if after != "" {
				q += "&after=" + after
			}
			code, out := get(q)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d", q, code)
			}
			var items []client.RequestSummary
			must(t, json.Unmarshal(out["requests"], &items))
			for _, it := range items {
				got = append(got, it.ID)
			}
			if out["next"] == nil {
				break
			}
			must(t, json.Unmarshal(out["next"], &after))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("paged listing %v, want %v", got, want)
		}
		if pages < 2 {
			t.Fatalf("5 summaries fit one 900-byte page (%d pages): the byte cap is not applied", pages)
		}
	})
	t.Run("limit over the maximum", func(t *testing.T) {
		if code, _ := get(fmt.Sprintf("?limit=%d", client.MaxListLimit+1)); code != http.StatusBadRequest {
			t.Fatalf("limit=%d: %d, want 400", client.MaxListLimit+1, code)
		}
	})
	t.Run("client follows pages", func(t *testing.T) {
		all, err := w.client.List(context.Background(), "", 0)
		must(t, err)
		if len(all) != len(want) || all[4].ID != want[4] {
			t.Fatalf("client.List got %d summaries, want %v", len(all), want)
		}
		some, err := w.client.List(context.Background(), signer.Pending, 3)
		must(t, err)
		if len(some) != 3 || some[2].ID != want[2] {
			t.Fatalf("client.List(limit 3) got %d", len(some))
		}
	})
}

func TestHealthProbesAreNotRateLimited(t *testing.T) {
	w := newWorld(t, func(c *signer.HTTPConfig) { c.RateLimit, c.Burst = 0.001, 1 })
	rawPost(t, w, "/v1/requests/x/signatures", strings.NewReader(`{}`), 2)
	if code, _ := rawPost(t, w, "/v1/requests/x/signatures", strings.NewReader(`{}`), 2); code != http.StatusTooManyRequests {
		t.Fatalf("second request with burst 1: %d, want 429", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		for i := range 20 {
			resp, err := http.Get(w.srv.URL + path)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s #%d of a rate-limited client: %d, want 200", path, i, resp.StatusCode)
			}
		}
	}
}

func TestConnectionsPerClientCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Listener = signer.LimitConnsPerClient(ln, 2)
	srv.Start()
	t.Cleanup(srv.Close)
	addr := ln.Addr().String()
	// get sends one request on conn and reports whether it was answered.
	get := func(conn net.Conn) bool {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	if !get(a) || !get(b) {
		t.Fatal("the first two connections were not served")
	}
	if get(dial()) {
		t.Fatal("a third connection from the same address was served with a cap of 2")
	}
	a.Close()
	for range 200 {
		if get(dial()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("closing a connection never freed its slot")
}
