//go:build !quorate_no_gcpkms

package kms

import (
	"context"
	"crypto"

	"github.com/sigstore/sigstore/pkg/signature/kms/gcp"
)

func gcpProvider() *provider {
	return &provider{
		scheme:   "gcpkms",
		validate: gcp.ValidReference,
		load: func(ctx context.Context, uri string, _ crypto.Hash, _ func(string) string) (Remote, error) {
			// Cloud KMS fixes the hash in the key version's algorithm.
			return gcp.LoadSignerVerifier(ctx, uri)
		},
		forms: "gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]",
	}
}
