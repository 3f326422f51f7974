//go:build !quorate_no_awskms

package kms_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/kms"
	"github.com/quorate-dev/quorate/internal/localkms"
	"github.com/quorate-dev/quorate/keys"
)

// verifyIndependently checks sig over msg with the standard library alone,
// in the scheme quorate's TUF key type names.
func verifyIndependently(pub *keys.PublicKey, msg, sig []byte) error {
	switch p := pub.Crypto().(type) {
	case *ecdsa.PublicKey:
		var digest []byte
		switch pub.Scheme() {
		case keys.SchemeECDSAP256:
			d := sha256.Sum256(msg)
			digest = d[:]
		case keys.SchemeECDSAP384:
			d := sha512.Sum384(msg)
			digest = d[:]
		}
		if !ecdsa.VerifyASN1(p, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		return rsa.VerifyPSS(p, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("unexpected key type %T", pub.Crypto())
}

// TestAWSKMSAgainstLocalKMS runs quorate's awskms:// backend, through
// sigstore's AWS provider and the AWS SDK, against local-kms: keys created
// through the AWS API, their public halves read and signatures made through
// quorate, checked locally.
func TestAWSKMSAgainstLocalKMS(t *testing.T) {
	srv := localkms.Start(t)
	srv.SetEnv(t)
	ctx := context.Background()
	b := kms.New(hsm.Options{})
	client := srv.Client(t)

	cases := []struct {
		name   string
		spec   types.KeySpec
		scheme string
		uri    func(keyID string) string
	}{
		{"ECC_NIST_P256 by key ID", types.KeySpecEccNistP256, keys.SchemeECDSAP256, srv.URI},
		{"ECC_NIST_P384 by key ID", types.KeySpecEccNistP384, keys.SchemeECDSAP384, srv.URI},
		{"RSA_2048 by key ID", types.KeySpecRsa2048, keys.SchemeRSAPSS, srv.URI},
		{"RSA_3072 by key ID", types.KeySpecRsa3072, keys.SchemeRSAPSS, srv.URI},
		{"ECC_NIST_P256 by alias", types.KeySpecEccNistP256, keys.SchemeECDSAP256, func(id string) string {
			srv.CreateAlias(t, "release-"+id[:8], id)
			return srv.URI("alias/release-" + id[:8])
		}},
		{"ECC_NIST_P256 by key ARN", types.KeySpecEccNistP256, keys.SchemeECDSAP256, func(id string) string {
			return srv.URI("arn:aws:kms:" + localkms.Region + ":" + localkms.Account + ":key/" + id)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := srv.CreateKey(t, tc.spec)
			uri := tc.uri(id)
			pub, err := b.PublicKey(ctx, uri)
			if err != nil {
				t.Fatalf("PublicKey(%s): %v\n%s", uri, err, srv.Log())
			}
			if pub.Scheme() != tc.scheme {
				t.Fatalf("scheme %s, want %s", pub.Scheme(), tc.scheme)
			}
			// The public half is the one the AWS API itself returns.
			out, err := client.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := x509.ParsePKIXPublicKey(out.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			want, err := keys.FromCrypto(raw)
			if err != nil || want.Identity() != pub.Identity() {
				t.Fatalf("public key through quorate differs from GetPublicKey's (%v)", err)
			}

			s, err := b.Signer(ctx, uri)
			if err != nil {
				t.Fatalf("Signer(%s): %v", uri, err)
			}
			defer s.Close()
			msg := []byte("DSSEv1 28 application/vnd.in-toto+json 2 {}")
			sig, err := s.Sign(ctx, msg)
			if err != nil {
				t.Fatalf("Sign: %v\n%s", err, srv.Log())
			}
			if err := pub.Verify(msg, sig); err != nil {
				t.Fatalf("quorate's verifier: %v", err)
			}
			if err := verifyIndependently(pub, msg, sig); err != nil {
				t.Fatalf("standard library: %v", err)
			}
			if err := pub.Verify(append(msg, '!'), sig); err == nil {
				t.Fatal("signature verifies over another message")
			}
		})
	}

	t.Run("concurrent signing", func(t *testing.T) {
		s, err := b.Signer(ctx, srv.URI(srv.CreateKey(t, types.KeySpecEccNistP256)))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				msg := fmt.Appendf(nil, "message %d", i)
				sig, err := s.Sign(ctx, msg)
				if err == nil {
					err = s.Public().Verify(msg, sig)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})

	// sigstore's provider cannot parse a secp256k1 key (crypto/x509 does not
	// know the curve), so the refusal comes before quorate's own
	// ErrUnsupportedKey check; it is a refusal all the same.
	t.Run("secp256k1 key refused", func(t *testing.T) {
		uri := srv.URI(srv.CreateKey(t, types.KeySpecEccSecgP256k1))
		_, err := b.Signer(ctx, uri)
		if err == nil || !(errors.Is(err, kms.ErrUnsupportedKey) || strings.Contains(err.Error(), "unsupported elliptic curve")) {
			t.Fatalf("Signer = %v, want a refusal of the curve", err)
		}
	})

	t.Run("unknown key named in the error", func(t *testing.T) {
		uri := srv.URI("00000000-0000-0000-0000-000000000000")
		_, err := b.Signer(ctx, uri)
		if err == nil || !strings.Contains(err.Error(), "00000000-0000-0000-0000-000000000000") {
			t.Fatalf("Signer = %v, want an error naming the key", err)
		}
	})
}
