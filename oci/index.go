package oci

import (
	"bytes"
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Bounds on following nested indexes in [Client.IndexContains].
const (
	maxIndexDepth   = 3
	maxIndexFetches = 16
)

// IndexContains reports whether the index with digest index ("sha256:…")
// in repository repo lists the manifest with digest manifest, directly or
// through nested indexes (at most 3 levels, 16 indexes). Each index is
// fetched by digest and its bytes checked against it, so the answer is
// about the approved index and nothing a tag points to now. An image
// manifest contains nothing.
func (c *Client) IndexContains(ctx context.Context, repo, index, manifest string) (bool, error) {
	r, err := c.repository(repo)
	if err != nil {
		return false, err
	}
	fetch, err := c.fetcher(ctx, r)
	if err != nil {
		return false, err
	}
	accept := "application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json"
	level, fetches := []string{index}, 0
	for depth := 0; depth < maxIndexDepth && len(level) > 0; depth++ {
		var next []string
		for _, d := range level {
			if fetches == maxIndexFetches {
				return false, fmt.Errorf("index %s: more than %d nested indexes", index, maxIndexFetches)
			}
			fetches++
			raw, err := fetch.get(ctx, "manifests", d, "index", maxManifestBytes, accept)
			if err != nil {
				return false, err
			}
			im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return false, fmt.Errorf("index %s: %w", d, err)
			}
			for _, m := range im.Manifests {
				if m.Digest.String() == manifest {
					return true, nil
				}
				if isIndex(m.MediaType) {
					next = append(next, m.Digest.String())
				}
			}
		}
		level = next
	}
	return false, nil
}
