package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// tufTrust fetches the coordinator's policy through its TUF repository
// with go-tuf's updater (root chain, timestamp, snapshot, targets: rollback
// and freeze protection), caching the metadata in cacheDir, and verifies
// it as a trust directory is verified: policy.LoadFrom walks the root chain
// again from the root the update started from, and earlier policy versions
// come from the repository's N.targets.json, checked against the digests
// the latest version endorses.
func (a *app) tufTrust(ctx context.Context, cf *clientFlags, pinFile, cacheDir string, now time.Time) (*policy.Trust, error) {
	cl, err := a.client(cf)
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		if cacheDir, err = a.tufCacheDir(cl.BaseURL); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(cacheDir, policy.HistoryDir), 0o700); err != nil {
		return nil, fmt.Errorf("creating the TUF cache: %w", err)
	}
	start, err := startingRoot(pinFile, cacheDir)
	if err != nil {
		return nil, err
	}
	repoURL := strings.TrimRight(cl.BaseURL, "/") + "/v1/tuf/"
	cfg, err := config.New(repoURL, start)
	if err != nil {
		return nil, usageErr("--coordinator: %w", err)
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = cacheDir, filepath.Join(cacheDir, "targets")
	f := fetcher.NewDefaultFetcher()
	f.SetHTTPClient(&http.Client{Transport: bearer{token: cl.Token, next: cl.HTTP.Transport}, Timeout: cl.HTTP.Timeout})
	cfg.Fetcher = f
	up, err := updater.New(cfg)
	if err != nil {
		return nil, usageErr("TUF cache %s: %w", cacheDir, err)
	}
	up.UnsafeSetRefTime(now)
	if err := up.Refresh(); err != nil {
		return nil, usageErr("updating the policy from %s: %w", repoURL, err)
	}
	src := tufSource{dir: cacheDir, fetch: func(name string) ([]byte, error) { return cl.TUFFile(ctx, name) }}
	t, err := policy.LoadFrom(src, policy.LoadOptions{Now: now, TrustRoot: start})
	if err != nil {
		return nil, usageErr("the policy fetched from %s: %w", repoURL, err)
	}
	return t, nil
}

// startingRoot is the root the update starts from: the cached root.json
// (proven by an earlier update) unless the pinned root is newer; the
// pinned root (--trust-root) is required on first use.
func startingRoot(pinFile, cacheDir string) ([]byte, error) {
	var pin []byte
	if pinFile != "" {
		var err error
		if pin, err = os.ReadFile(pinFile); err != nil {
			return nil, usageErr("--trust-root: %w", err)
		}
		if _, err := policy.ParseRoot(pin); err != nil {
			return nil, usageErr("--trust-root %s: %w", pinFile, err)
		}
	}
	cached, err := os.ReadFile(filepath.Join(cacheDir, policy.RootFile))
	switch {
	case errors.Is(err, fs.ErrNotExist) && pin == nil:
		return nil, usageErr("--trust-root root.json (obtained out of band) is required on first use of the TUF cache %s", cacheDir)
	case errors.Is(err, fs.ErrNotExist):
		return pin, nil
	case err != nil:
		return nil, fmt.Errorf("reading the TUF cache: %w", err)
	}
	cr, err := policy.ParseRoot(cached)
	if err != nil {
		return nil, usageErr("TUF cache %s: %w (remove it and start again from --trust-root)", cacheDir, err)
	}
	if pin != nil {
		if pr, _ := policy.ParseRoot(pin); pr.Signed.Version > cr.Signed.Version {
			return pin, nil
		}
	}
	return cached, nil
}

// tufCacheDir is $XDG_CACHE_HOME/quorate/tuf-<hash of the URL>.
func (a *app) tufCacheDir(url string) (string, error) {
	base := a.getenv("XDG_CACHE_HOME")
	if base == "" {
		home := a.getenv("HOME")
		if home == "" {
			return "", usageErr("no $XDG_CACHE_HOME or $HOME for the TUF cache: give --cache DIR")
		}
		base = filepath.Join(home, ".cache")
	}
	sum := sha256.Sum256([]byte(strings.TrimRight(url, "/")))
	return filepath.Join(base, "quorate", "tuf-"+hex.EncodeToString(sum[:8])), nil
}

// bearer adds the read token to the updater's requests.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	next := b.next
	if next == nil {
		next = http.DefaultTransport
	}
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return next.RoundTrip(r)
}

// tufSource is the updater's cache as a policy.Source: root.json and
// targets.json as the updater verified and stored them; earlier root and
// targets versions fetched from the repository (N.root.json,
// N.targets.json) on first need and kept under history/. Nothing fetched
// is trusted as such: LoadFrom verifies each root against the previous one
// and PolicyAt checks each targets version against its endorsed digest.
type tufSource struct {
	dir   string
	fetch func(name string) ([]byte, error)
}

func (s tufSource) Latest() ([]byte, []byte, error) { return policy.DirSource(s.dir).Latest() }

func (s tufSource) Root(v int64) ([]byte, error) { return s.version("root", v) }

func (s tufSource) Targets(v int64) ([]byte, error) { return s.version("targets", v) }

func (s tufSource) version(role string, v int64) ([]byte, error) {
	path := policy.HistoryPath(s.dir, role, v)
	if data, err := os.ReadFile(path); err == nil {
		return data, nil
	}
	data, err := s.fetch(fmt.Sprintf("%d.%s.json", v, role))
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, fmt.Errorf("%s version %d: %w", role, v, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return nil, err
	}
	return data, nil
}
