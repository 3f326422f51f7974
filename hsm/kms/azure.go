//go:build !quorate_no_azurekms

package kms

import (
	"context"
	"crypto"

	"github.com/sigstore/sigstore/pkg/signature/kms/azure"
)

func azureProvider() *provider {
	return &provider{
		scheme:   "azurekms",
		validate: azure.ValidReference,
		load: func(ctx context.Context, uri string, _ crypto.Hash, _ func(string) string) (Remote, error) {
			return azure.LoadSignerVerifier(ctx, uri)
		},
		// sigstore v1.10 signs RSA keys in Key Vault with RS256..RS512.
		rsaPKCS1Only: true,
		forms:        "azurekms://VAULT.vault.azure.net/KEY[/VERSION]",
	}
}
