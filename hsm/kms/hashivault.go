//go:build !quorate_no_hashivault

package kms

import (
	"context"
	"crypto"

	"github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Environment variables the Vault provider reads through hsm.Options.Getenv.
const (
	EnvVaultAddr  = "VAULT_ADDR"
	EnvVaultToken = "VAULT_TOKEN"
)

func vaultProvider() *provider {
	return &provider{
		scheme:   "hashivault",
		validate: hashivault.ValidReference,
		load: func(ctx context.Context, uri string, hash crypto.Hash, getenv func(string) string) (Remote, error) {
			auth := options.RPCAuth{}
			if getenv != nil {
				auth.Address, auth.Token = getenv(EnvVaultAddr), getenv(EnvVaultToken)
			}
			return hashivault.LoadSignerVerifier(uri, hash, options.WithContext(ctx), options.WithRPCAuthOpts(auth))
		},
		// sigstore's transit client asks for signature_algorithm=pkcs1v15.
		rsaPKCS1Only: true,
		forms:        "hashivault://KEY",
	}
}
