package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/quorate-dev/quorate/signer/client"
	"github.com/spf13/cobra"
)

// clientFlags are the flags of every command that talks to a coordinator.
type clientFlags struct {
	url, tokenFile, caCert, clientCert, clientKey string
}

func (f *clientFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.url, "coordinator", "", "coordinator URL")
	c.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token for reads")
	c.Flags().StringVar(&f.caCert, "ca-cert", "", "CA certificate to trust for the coordinator's TLS certificate")
	c.Flags().StringVar(&f.clientCert, "client-cert", "", "client certificate for mutual TLS")
	c.Flags().StringVar(&f.clientKey, "client-key", "", "client certificate key for mutual TLS")
}

// client is the coordinator client the flags (and $QUORATE_COORDINATOR,
// $QUORATE_TOKEN) describe (client.New).
func (a *app) client(f *clientFlags) (*client.Client, error) {
	o := client.Options{URL: f.url, Token: a.getenv("QUORATE_TOKEN")}
	if o.URL == "" {
		o.URL = a.getenv("QUORATE_COORDINATOR")
	}
	if o.URL == "" {
		return nil, usageErr("--coordinator URL (or $QUORATE_COORDINATOR) is required")
	}
	if f.tokenFile != "" {
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, usageErr("reading --token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(data))
	}
	if f.caCert != "" {
		pem, err := os.ReadFile(f.caCert)
		if err != nil {
			return nil, usageErr("reading --ca-cert: %w", err)
		}
		o.RootCAs = pem
	}
	if f.clientCert != "" || f.clientKey != "" {
		cert, err := tls.LoadX509KeyPair(f.clientCert, f.clientKey)
		if err != nil {
			return nil, usageErr("loading client certificate: %w", err)
		}
		o.Certificate = &cert
	}
	c, err := client.New(o)
	if errors.Is(err, client.ErrNoCertificate) {
		return nil, usageErr("--ca-cert %s holds no PEM certificate", f.caCert)
	}
	if err != nil {
		return nil, usageErr("--coordinator: %w", err)
	}
	return c, nil
}

func describeAPIError(err error) error {
	if ae, ok := err.(*client.APIError); ok && ae.Retryable() {
		return fmt.Errorf("%w (retry later)", ae)
	}
	return err
}
