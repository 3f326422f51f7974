package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// bigOpen is the JSON body opening a request whose statement carries a
// provenance predicate of about size bytes.
func bigOpen(t *testing.T, trust *policy.Trust, s hsm.Signer, id string, size int) []byte {
	t.Helper()
	now := time.Now().UTC()
	pad, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", size)})
	st, err := attest.NewStatement([]attest.Subject{{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		attest.Predicate{Gate: "load", Policy: attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
			RequestID: id, Created: now, Expires: now.Add(time.Hour),
			Provenance: &attest.Provenance{PredicateType: "https://slsa.dev/provenance/v1", Predicate: pad}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sigFor(t, s, st)})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// fromAddr is an HTTP client whose connections come from local address ip
// (any of 127/8 reaches a loopback listener), so the load and the health
// probe count as different clients.
func fromAddr(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 300, DisableCompression: true}}
}

// procStatus reads a kB field (VmRSS, VmHWM) of /proc/pid/status, in MiB.
func procStatus(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// TestMemoryBoundedUnderLoad drives 250 concurrent maximum-size bodies and 8
// concurrent list calls at a coordinator holding 60 pending ~3 MB requests,
// while probing /healthz from another address. It asserts the peak RSS
// (VmHWM) stays under 512 MiB and every probe answers 200, and logs the
// figures: peak RSS and the probes' maximum and p99 latency.
//
// QUORATE_E2E_BIN runs it against another build (e.g. an older one, to
// compare); flags that build lacks are left out.
func TestMemoryBoundedUnderLoad(t *testing.T) {
	bin := quorateBin
	if b := os.Getenv("QUORATE_E2E_BIN"); b != "" {
		bin = b
	}
	help, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	for _, c := range []struct {
		name  string
		token string
	}{{"reads open", ""}, {"read token", "load-token"}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			signers, trust, trustDir := fixture(t, dir, 2)
			var extra []string
			if c.token != "" {
				tokenFile := filepath.Join(dir, "token")
				if err := os.WriteFile(tokenFile, []byte(c.token), 0o600); err != nil {
					t.Fatal(err)
				}
				extra = append(extra, "--read-token-file", tokenFile)
			}
			// Let every one of the 250 connections in, so the load
			// reaches the body and listing code (the per-client cap
			// would otherwise close most of them on accept).
			if bytes.Contains(help, []byte("--max-conns-per-client")) {
				extra = append(extra, "--max-conns-per-client", "300")
			}
			// And let this one client use the whole in-flight budget, as
			// many clients together could.
			if bytes.Contains(help, []byte("--max-in-flight-bytes-per-client")) {
				extra = append(extra, "--max-in-flight-bytes-per-client", strconv.Itoa(32<<20))
			}
			srv := startServerWith(t, bin, dir, trustDir, extra...)
			pid := srv.cmd.Process.Pid
			ctx := context.Background()

			// 60 pending requests of about 3 MB (threshold 2: the
			// requester's signature alone leaves them pending).
			setup := fromAddr("127.0.0.4", 60*time.Second)
			var setupWG sync.WaitGroup
			setupErrs := make(chan error, 60)
			for w := range 4 {
				setupWG.Go(func() {
					for i := w; i < 60; i += 4 {
						body := bigOpen(t, trust, signers[0], fmt.Sprintf("mem-%03d-%d", i, time.Now().UnixNano()), 3<<20*3/4)
						resp, err := setup.Post(srv.url+"/v1/requests", "application/json", bytes.NewReader(body))
						if err != nil {
							setupErrs <- err
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusCreated {
							setupErrs <- fmt.Errorf("opening request %d: HTTP %d", i, resp.StatusCode)
							return
						}
					}
				})
			}
			setupWG.Wait()
			close(setupErrs)
			for err := range setupErrs {
				t.Fatal(err)
			}
			// The pending gauge counts in the store instead of loading
			// the requests.
			resp, err := setup.Get(srv.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Contains(metrics, []byte("\nquorate_requests_pending 60\n")) {
				t.Errorf("/metrics does not report 60 pending requests")
			}
			baseRSS, _ := procStatus(pid, "VmRSS")

			// The maximum-size body: a valid, signed request of just
			// under 4 MiB; the first one posted is stored, the others
			// are refused as duplicates after being read and checked.
			maxBody := bigOpen(t, trust, signers[0], fmt.Sprintf("mem-max-%d", time.Now().UnixNano()), 0)
			maxBody = bigOpen(t, trust, signers[0], fmt.Sprintf("mem-max-%d", time.Now().UnixNano()), (4<<20-len(maxBody)-1024)*3/4)

			loadCtx, stop := context.WithTimeout(ctx, 8*time.Second)
			defer stop()
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				statuses = map[string]int{}
				listed   atomic.Int64
			)
			count := func(what string) {
				mu.Lock()
				statuses[what]++
				mu.Unlock()
			}
			bodies := fromAddr("127.0.0.2", 30*time.Second)
			for range 250 {
				wg.Go(func() {
					for loadCtx.Err() == nil {
						req, _ := http.NewRequestWithContext(loadCtx, http.MethodPost, srv.url+"/v1/requests", bytes.NewReader(maxBody))
						req.Header.Set("Content-Type", "application/json")
						resp, err := bodies.Do(req)
						if err != nil {
							if loadCtx.Err() == nil {
								count("open: transport error")
								time.Sleep(50 * time.Millisecond)
							}
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						count(fmt.Sprintf("open: HTTP %d", resp.StatusCode))
					}
				})
			}
			lists := fromAddr("127.0.0.3", 60*time.Second)
			for range 8 {
				wg.Go(func() {
					for loadCtx.Err() == nil {
						req, _ := http.NewRequestWithContext(loadCtx, http.MethodGet, srv.url+"/v1/requests?limit=500", nil)
						if c.token != "" {
							req.Header.Set("Authorization", "Bearer "+c.token)
						}
						resp, err := lists.Do(req)
						if err != nil {
							if loadCtx.Err() == nil {
								count("list: transport error")
							}
							continue
						}
						n, _ := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						listed.Add(n)
						count(fmt.Sprintf("list: HTTP %d", resp.StatusCode))
					}
				})
			}
			// The probe and the RSS sampler, from an address of their own.
			probe := fromAddr("127.0.0.1", 10*time.Second)
			var lat []time.Duration
			var probeErrs []string
			var peakRSS float64
			for loadCtx.Err() == nil {
				start := time.Now()
				resp, err := probe.Get(srv.url + "/healthz")
				d := time.Since(start)
				switch {
				case err != nil:
					probeErrs = append(probeErrs, err.Error())
				case resp.StatusCode != http.StatusOK:
					probeErrs = append(probeErrs, resp.Status)
				}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat = append(lat, d)
				if rss, err := procStatus(pid, "VmRSS"); err == nil {
					peakRSS = max(peakRSS, rss)
				}
				time.Sleep(100 * time.Millisecond)
			}
			wg.Wait()
			hwm, err := procStatus(pid, "VmHWM")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(lat)
			p99 := lat[min(len(lat)-1, len(lat)*99/100)]
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range statuses {
					if !yield(k) {
						return
					}
				}
			})
			var summary []string
			for _, k := range keys {
				summary = append(summary, fmt.Sprintf("%s ×%d", k, statuses[k]))
			}
			t.Logf("%s: RSS after setup %.0f MiB, peak sampled VmRSS %.0f MiB, VmHWM %.0f MiB; /healthz %d probes, max %s, p99 %s, %d failed; listing bytes received %d MiB; %s",
				c.name, baseRSS, peakRSS, hwm, len(lat), lat[len(lat)-1].Round(time.Millisecond), p99.Round(time.Millisecond), len(probeErrs), listed.Load()>>20, strings.Join(summary, ", "))
			if len(probeErrs) > 0 {
				t.Errorf("%d of %d /healthz probes failed, first: %s", len(probeErrs), len(lat), probeErrs[0])
			}
			if hwm >= 512 {
				t.Errorf("coordinator peak RSS (VmHWM) %.0f MiB, want under 512 MiB", hwm)
			}
		})
	}
}
