package registrytest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"
)

// The Debian registry starts, serves the v2 API, has no OCI 1.1 referrers
// API (so quorate's referrers go through the tag schema there), and is
// stopped when the test that started it ends.
func TestStartServesAndStops(t *testing.T) {
	var host string
	t.Run("running", func(t *testing.T) {
		r := Start(t)
		host = r.Host
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Ping(ctx); err != nil {
			t.Fatalf("registry not answering: %v", err)
		}
		if fi, err := os.Stat(r.StorageDir); err != nil || !fi.IsDir() {
			t.Fatalf("storage directory %q: %v", r.StorageDir, err)
		}
		if r.Referrers {
			t.Fatal("Debian's distribution 2.8 registry reported as serving the referrers API")
		}
		resp, err := http.Get("http://" + r.Host + "/v2/app/referrers/sha256:" + zeros)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET referrers answered %s; if this registry now serves the referrers API, set Registry.Referrers and test that path on it", resp.Status)
		}
	})
	if host == "" {
		return // skipped
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := (&Registry{Host: host}).Ping(ctx); err == nil {
		t.Fatalf("registry at %s still answers after its test ended", host)
	}
}

// Over HTTPS with basic authentication: the certificate is trusted through
// RootCAs, and /v2/ answers 401 without credentials and 200 with them.
func TestStartWithTLSAndAuth(t *testing.T) {
	r := StartWith(t, Options{TLS: true, Username: "ci", Password: "s3cret"})
	for _, tc := range []struct {
		name       string
		user, pass string
		want       int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", "ci", "nope", http.StatusUnauthorized},
		{"right credentials", "ci", "s3cret", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "https://"+r.Host+"/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			tr := r.Transport()
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("GET /v2/ = %s, want %d", resp.Status, tc.want)
			}
		})
	}
	t.Run("untrusted without RootCAs", func(t *testing.T) {
		resp, err := http.Get("https://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			t.Fatal("the self-signed certificate was trusted by the default transport")
		}
	})
}

func TestStartInProcessServesReferrersAPI(t *testing.T) {
	r := StartInProcess(t)
	// For an unknown repository the referrers route answers 404
	// NAME_UNKNOWN; without the route the answer would be METHOD_UNKNOWN.
	resp, err := http.Get("http://" + r.Host + "/v2/app/referrers/sha256:" + zeros)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decoding the error body: %v", err)
	}
	if len(body.Errors) != 1 || body.Errors[0].Code != "NAME_UNKNOWN" {
		t.Fatalf("referrers route missing: %s %+v", resp.Status, body)
	}
	if !r.Referrers {
		t.Fatal("in-process registry not reported as serving the referrers API")
	}
}

func TestBlobPath(t *testing.T) {
	r := &Registry{StorageDir: "/s"}
	for _, tc := range []struct {
		name, digest, want string
	}{
		{"sha256", "sha256:" + zeros, "/s/docker/registry/v2/blobs/sha256/00/" + zeros + "/data"},
		{"no algorithm", zeros, ""},
		{"sha512", "sha512:" + zeros, ""},
		{"short", "sha256:00", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.BlobPath(tc.digest)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("BlobPath(%q) = %q, want an error", tc.digest, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("BlobPath(%q) = %q, %v; want %q", tc.digest, got, err, tc.want)
			}
		})
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
