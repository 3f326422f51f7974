package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/policy/author"
)

func (a *app) policyFulcio() *cobra.Command {
	var dir, file string
	var exp time.Duration
	c := &cobra.Command{
		Use:   "fulcio --trust DIR --trusted-root FILE",
		Short: "Trust the Fulcio certificate authorities of a Sigstore trusted_root.json for keyless identities",
		Long: `Copy the certificate authorities (certificate chains and validity periods)
of a Sigstore trusted_root.json into a new policy version: certificates of
keyless identities ('quorate policy role --identity') must chain to one of
them, at the time quorate's ledger logged the signature. Transparency logs
and timestamp authorities of the file are not used: quorate's ledger is the
timestamp. Obtain the file out of band (for the public-good instance,
through Sigstore's TUF repository: 'cosign trusted-root create' or
sigstore-go's FetchTrustedRoot); then run 'quorate policy sign'.`,
		Example: "  quorate policy fulcio --trust trust --trusted-root trusted_root.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr("--trusted-root FILE is required")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return usageErr("--trusted-root: %w", err)
			}
			auths, err := keyless.ParseTrustedRoot(data)
			if err != nil {
				return err
			}
			if err := a.editDraft(dir, func(d *author.Draft) error { return d.SetFulcio(auths, exp) }); err != nil {
				return err
			}
			for _, au := range auths {
				a.errf("trusting Fulcio authority %s (root %s)\n", au.URI, au.Chain[len(au.Chain)-1].Subject)
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&file, "trusted-root", "", "Sigstore trusted_root.json")
	c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	return c
}

// parseIdentities parses --identity ISSUER=SUBJECT flags.
func parseIdentities(flags []string) ([]keyless.Identity, error) {
	var out []keyless.Identity
	for _, f := range flags {
		id, err := keyless.ParseIdentity(f)
		if err != nil {
			return nil, usageErr("--identity: %w", err)
		}
		out = append(out, id)
	}
	return out, nil
}

// readCertChain reads --cert-chain FILE for a keyless signature by pub.
func readCertChain(file string, pub *keys.PublicKey) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErr("--cert-chain: %w", err)
	}
	chain, err := keyless.ParseChainPEM(data, pub)
	if err != nil {
		return nil, fmt.Errorf("--cert-chain %s: %w", file, err)
	}
	return chain, nil
}

// makeKeyless turns the signature just made (the envelope's last) into a
// keyless one: its keyid carries the certificate chain.
func makeKeyless(env *attest.Envelope, chain []*x509.Certificate) attest.Signature {
	last := &env.Signatures[len(env.Signatures)-1]
	last.KeyID = keyless.EncodeKeyID(chain)
	return *last
}
