package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

// tufTrust fetches the coordinator's policy through its TUF repository
// (tufrepo.Fetch), from the root pinned with --trust-root or cached by an
// earlier run, caching in cacheDir (default: tufrepo.CacheDir).
func (a *app) tufTrust(ctx context.Context, cf *clientFlags, pinFile, cacheDir string, now time.Time) (*policy.Trust, error) {
	fc, err := a.tufConfig(cf, pinFile, cacheDir)
	if err != nil {
		return nil, err
	}
	fc.Now = now
	t, err := tufrepo.Fetch(ctx, fc)
	var pe *fs.PathError
	switch {
	case errors.Is(err, tufrepo.ErrNoRoot):
		return nil, usageErr("--trust-root root.json (obtained out of band) is required on first use of the TUF cache %s", fc.CacheDir)
	case errors.As(err, &pe):
		return nil, err // the cache could not be read or written
	case err != nil:
		return nil, usageErr("%w", err)
	}
	return t, nil
}

// tufConfig is how to fetch the coordinator's policy through TUF: its
// client, the cache directory, the pinned root (checked to parse).
func (a *app) tufConfig(cf *clientFlags, pinFile, cacheDir string) (tufrepo.FetchConfig, error) {
	cl, err := a.client(cf)
	if err != nil {
		return tufrepo.FetchConfig{}, err
	}
	if cacheDir == "" {
		if cacheDir, err = tufrepo.DefaultCacheDir(a.getenv, cl.BaseURL); err != nil {
			return tufrepo.FetchConfig{}, usageErr("%w: give --cache DIR", err)
		}
	}
	var pin []byte
	if pinFile != "" {
		if pin, err = os.ReadFile(pinFile); err != nil {
			return tufrepo.FetchConfig{}, usageErr("--trust-root: %w", err)
		}
		if _, err := policy.ParseRoot(pin); err != nil {
			return tufrepo.FetchConfig{}, usageErr("--trust-root %s: %w", pinFile, err)
		}
	}
	return tufrepo.FetchConfig{Client: cl, CacheDir: cacheDir, Root: pin}, nil
}
