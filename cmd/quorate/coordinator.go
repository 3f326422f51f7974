package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

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

func (a *app) client(f *clientFlags) (*client.Client, error) {
	u := f.url
	if u == "" {
		u = a.getenv("QUORATE_COORDINATOR")
	}
	if u == "" {
		return nil, usageErr("--coordinator URL (or $QUORATE_COORDINATOR) is required")
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, usageErr("--coordinator %q: want an http:// or https:// URL", u)
	}
	c := &client.Client{BaseURL: u, Token: a.getenv("QUORATE_TOKEN")}
	if f.tokenFile != "" {
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, usageErr("reading --token-file: %w", err)
		}
		c.Token = strings.TrimSpace(string(data))
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	custom := false
	if f.caCert != "" {
		pem, err := os.ReadFile(f.caCert)
		if err != nil {
			return nil, usageErr("reading --ca-cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--ca-cert %s holds no PEM certificate", f.caCert)
		}
		tlsConf.RootCAs, custom = pool, true
	}
	if f.clientCert != "" || f.clientKey != "" {
		cert, err := tls.LoadX509KeyPair(f.clientCert, f.clientKey)
		if err != nil {
			return nil, usageErr("loading client certificate: %w", err)
		}
		tlsConf.Certificates, custom = []tls.Certificate{cert}, true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if custom {
		tr.TLSClientConfig = tlsConf
	}
	c.HTTP = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	return c, nil
}

func describeAPIError(err error) error {
	if ae, ok := err.(*client.APIError); ok && ae.Retryable() {
		return fmt.Errorf("%w (retry later)", ae)
	}
	return err
}
