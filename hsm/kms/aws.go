//go:build !quorate_no_awskms

package kms

import (
	"context"
	"crypto"

	"github.com/sigstore/sigstore/pkg/signature/kms/aws"
)

func awsProvider() *provider {
	return &provider{
		scheme:   "awskms",
		validate: aws.ValidReference,
		load: func(ctx context.Context, uri string, _ crypto.Hash, _ func(string) string) (Remote, error) {
			// AWS picks the hash from the key's signing algorithm.
			return aws.LoadSignerVerifier(ctx, uri)
		},
		forms: "awskms:///KEY-ID, awskms:///alias/NAME, awskms:///arn:aws:kms:REGION:ACCOUNT:key/KEY-ID, awskms://ENDPOINT/...",
	}
}
