package tufrepo

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

// FetchConfig says where [Fetch] gets the policy from.
type FetchConfig struct {
	// Client is the coordinator: its base URL, HTTP client and read token.
	Client *client.Client
	// CacheDir keeps the metadata the updater verified between runs
	// (see [CacheDir]).
	CacheDir string
	// Root is the root.json obtained out of band (the pin). It may be nil
	// once the cache holds a root; a newer pin replaces the cached root as
	// the starting point.
	Root []byte
	// Now is the time the metadata must be valid at.
	Now time.Time
}

// ErrNoRoot is returned on first use of a cache when no root was pinned.
var ErrNoRoot = errors.New("a root.json obtained out of band is required on first use of the TUF cache")

// Fetch fetches the coordinator's policy through its TUF repository with
// go-tuf's updater (root chain, timestamp, snapshot, targets: rollback
// and freeze protection), caching the metadata in cfg.CacheDir, and
// verifies it as a trust directory is verified: policy.LoadFrom walks the
// root chain again from the root the update started from, and earlier
// policy versions come from the repository's N.targets.json, checked
// against the digests the latest version endorses.
func Fetch(ctx context.Context, cfg FetchConfig) (*policy.Trust, error) {
	cl := cfg.Client
	if err := os.MkdirAll(filepath.Join(cfg.CacheDir, policy.HistoryDir), 0o700); err != nil {
		return nil, fmt.Errorf("creating the TUF cache: %w", err)
	}
	start, err := startingRoot(cfg.Root, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	repoURL := strings.TrimRight(cl.BaseURL, "/") + "/v1/tuf/"
	tc, err := config.New(repoURL, start)
	if err != nil {
		return nil, fmt.Errorf("coordinator URL: %w", err)
	}
	tc.LocalMetadataDir, tc.LocalTargetsDir = cfg.CacheDir, filepath.Join(cfg.CacheDir, "targets")
	hc := cl.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	f := fetcher.NewDefaultFetcher()
	f.SetHTTPClient(&http.Client{Transport: bearer{token: cl.Token, next: hc.Transport}, Timeout: hc.Timeout})
	tc.Fetcher = f
	up, err := updater.New(tc)
	if err != nil {
		return nil, fmt.Errorf("TUF cache %s: %w", cfg.CacheDir, err)
	}
	up.UnsafeSetRefTime(cfg.Now)
	if err := up.Refresh(); err != nil {
		// go-tuf says only "http status code: 404": ask the coordinator why
		// (no TUF repository without serve --tuf-key; not a coordinator).
		if _, why := cl.TUFFile(ctx, "timestamp.json"); why != nil {
			var ae *client.APIError
			if errors.As(why, &ae) {
				return nil, fmt.Errorf("updating the policy from %s: %w", repoURL, why)
			}
		}
		return nil, fmt.Errorf("updating the policy from %s: %w", repoURL, err)
	}
	src := cacheSource{dir: cfg.CacheDir, fetch: func(name string) ([]byte, error) { return cl.TUFFile(ctx, name) }}
	t, err := policy.LoadFrom(src, policy.LoadOptions{Now: cfg.Now, TrustRoot: start})
	if err != nil {
		return nil, fmt.Errorf("the policy fetched from %s: %w", repoURL, err)
	}
	return t, nil
}

// startingRoot is the root the update starts from: the cached root.json
// (proven by an earlier update) unless the pinned root is newer; the
// pinned root is required on first use.
func startingRoot(pin []byte, cacheDir string) ([]byte, error) {
	cached, err := os.ReadFile(filepath.Join(cacheDir, policy.RootFile))
	switch {
	case errors.Is(err, fs.ErrNotExist) && pin == nil:
		return nil, fmt.Errorf("%w (%s)", ErrNoRoot, cacheDir)
	case errors.Is(err, fs.ErrNotExist):
		return pin, nil
	case err != nil:
		return nil, fmt.Errorf("reading the TUF cache: %w", err)
	}
	cr, err := policy.ParseRoot(cached)
	if err != nil {
		return nil, fmt.Errorf("TUF cache %s: %w (remove it and start again from a pinned root)", cacheDir, err)
	}
	if pin != nil {
		if pr, err := policy.ParseRoot(pin); err == nil && pr.Signed.Version > cr.Signed.Version {
			return pin, nil
		}
	}
	return cached, nil
}

// CacheDir is the default cache of a coordinator's metadata:
// cacheHome/quorate/tuf-<hash of the URL> (cacheHome: $XDG_CACHE_HOME or
// ~/.cache).
func CacheDir(cacheHome, coordinatorURL string) string {
	sum := sha256.Sum256([]byte(strings.TrimRight(coordinatorURL, "/")))
	return filepath.Join(cacheHome, "quorate", "tuf-"+hex.EncodeToString(sum[:8]))
}

// ErrNoCacheHome: neither $XDG_CACHE_HOME nor $HOME is set, so there is no
// default cache directory.
var ErrNoCacheHome = errors.New("no $XDG_CACHE_HOME or $HOME for the TUF cache")

// DefaultCacheDir is [CacheDir] under the user's cache home:
// $XDG_CACHE_HOME, else $HOME/.cache, read with getenv.
func DefaultCacheDir(getenv func(string) string, coordinatorURL string) (string, error) {
	base := getenv("XDG_CACHE_HOME")
	if base == "" {
		home := getenv("HOME")
		if home == "" {
			return "", ErrNoCacheHome
		}
		base = filepath.Join(home, ".cache")
	}
	return CacheDir(base, coordinatorURL), nil
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

// cacheSource is the updater's cache as a policy.Source: root.json and
// targets.json as the updater verified and stored them; earlier root and
// targets versions fetched from the repository (N.root.json,
// N.targets.json) on first need and kept under history/. Nothing fetched
// is trusted as such: LoadFrom verifies each root against the previous one
// and PolicyAt checks each targets version against its endorsed digest.
type cacheSource struct {
	dir   string
	fetch func(name string) ([]byte, error)
}

func (s cacheSource) Latest() ([]byte, []byte, error) { return policy.DirSource(s.dir).Latest() }

func (s cacheSource) Root(v int64) ([]byte, error) { return s.version("root", v) }

func (s cacheSource) Targets(v int64) ([]byte, error) { return s.version("targets", v) }

func (s cacheSource) version(role string, v int64) ([]byte, error) {
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
