package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/quorate-dev/quorate/signer/client"
)

// TestRequestAttestationRefusesAnotherRequests: 'quorate request
// attestation A' through a proxy that answers with request B's
// attestation refuses it and writes nothing.
func TestRequestAttestationRefusesAnotherRequests(t *testing.T) {
	dir := t.TempDir()
	signers, trust, trustDir := fixture(t, dir, 1) // threshold 1: opening completes a request
	srv := startServer(t, dir, trustDir)
	cl := &client.Client{BaseURL: srv.url}
	ids := openRequests(t, cl, trust, signers, 2, "swap")
	a, b := ids[0], ids[1]
	upstream, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	director := proxy.Director
	proxy.Director = func(r *http.Request) {
		director(r)
		r.URL.Path = strings.Replace(r.URL.Path, "/v1/requests/"+a+"/", "/v1/requests/"+b+"/", 1)
	}
	swap := httptest.NewServer(proxy)
	defer swap.Close()

	cases := []struct {
		name, coordinator string
		extra             []string
		want              int
		wantOut           string
	}{
		{"another request's attestation", swap.URL, nil, 1, "not of request " + a},
		{"another gate", srv.url, []string{"--gate", "production"}, 1, `not gate "production"`},
		{"the right one", srv.url, []string{"--gate", "load"}, 0, "wrote"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "a.intoto.json")
			args := append([]string{"request", "attestation", a, "--coordinator", tc.coordinator, "--out", out}, tc.extra...)
			got, code := runCLI(t, dir, nil, args...)
			if code != tc.want || !strings.Contains(got, tc.wantOut) {
				t.Fatalf("exit %d, want %d with %q; output:\n%s", code, tc.want, tc.wantOut, got)
			}
			_, statErr := os.Stat(out)
			if written := statErr == nil; written != (tc.want == 0) {
				t.Fatalf("attestation written: %v, want %v", written, tc.want == 0)
			}
		})
	}
}

// setFileSizeLimit sets RLIMIT_FSIZE of process pid (prlimit(2)): with 0,
// every write to a file fails with EFBIG, as writes fail on a full disk.
func setFileSizeLimit(t *testing.T, pid int, limit uint64) {
	t.Helper()
	lim := syscall.Rlimit{Cur: limit, Max: ^uint64(0)}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(syscall.RLIMIT_FSIZE), uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
		t.Fatalf("prlimit(%d, RLIMIT_FSIZE, %d): %v", pid, limit, errno)
	}
}

// TestReadinessFailsWhileDiskWritesFail: a coordinator on SQLite whose file
// writes fail (RLIMIT_FSIZE 0, like a full disk) answers 503 to writes and
// to /readyz, though reads still work; once writes succeed again it is
// ready again.
func TestReadinessFailsWhileDiskWritesFail(t *testing.T) {
	dir := t.TempDir()
	signers, trust, trustDir := fixture(t, dir, 1)
	srv := startServer(t, dir, trustDir)
	cl := &client.Client{BaseURL: srv.url}
	first := openRequests(t, cl, trust, signers, 1, "before")[0]
	readyz := func() (int, string) {
		resp, err := http.Get(srv.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}

	setFileSizeLimit(t, srv.cmd.Process.Pid, 0)
	_, err := cl.Open(context.Background(), openInput(t, trust, signers[0], "full", 7))
	if ae, ok := err.(*client.APIError); !ok || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("open while writes fail: %v, want 503", err)
	}
	if _, err := cl.Get(context.Background(), first); err != nil {
		t.Fatalf("reads fail too: %v", err)
	}
	code, body := readyz()
	var eb client.ErrorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if code != http.StatusServiceUnavailable || !strings.Contains(eb.Error, "store writes are failing") {
		t.Fatalf("/readyz while writes fail = %d %s, want 503 naming the failing writes", code, body)
	}

	setFileSizeLimit(t, srv.cmd.Process.Pid, ^uint64(0))
	if _, err := cl.Open(context.Background(), openInput(t, trust, signers[0], "after", 8)); err != nil {
		t.Fatalf("open once writes succeed again: %v\n%s", err, srv.log.String())
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz after recovery = %d %s", code, body)
	}
}
