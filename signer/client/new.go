package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultTimeout bounds one call of a [Client] made by [New].
const DefaultTimeout = 60 * time.Second

// Options are how [New] reaches a coordinator.
type Options struct {
	// URL is the coordinator's base URL: http:// or https:// only.
	URL string
	// Token is the bearer token for reads, if the coordinator requires one.
	Token string
	// RootCAs are PEM certificates to trust for the coordinator's TLS
	// certificate instead of the system's (a private CA).
	RootCAs []byte
	// Certificate is the client certificate for mutual TLS.
	Certificate *tls.Certificate
	// Timeout bounds each call (zero: DefaultTimeout).
	Timeout time.Duration
}

// ErrNoCertificate: Options.RootCAs holds no PEM certificate.
var ErrNoCertificate = errors.New("no PEM certificate")

// New returns a client for the coordinator at o.URL, with TLS 1.2 or later
// when o names a private CA or a client certificate (the default transport
// otherwise). It refuses a URL that is not http:// or https:// and CA
// bytes without a certificate.
func New(o Options) (*Client, error) {
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return nil, fmt.Errorf("coordinator URL %q: want an http:// or https:// URL", o.URL)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	custom := false
	if o.RootCAs != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.RootCAs) {
			return nil, fmt.Errorf("CA certificates: %w", ErrNoCertificate)
		}
		tlsConf.RootCAs, custom = pool, true
	}
	if o.Certificate != nil {
		tlsConf.Certificates, custom = []tls.Certificate{*o.Certificate}, true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if custom {
		tr.TLSClientConfig = tlsConf
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{BaseURL: o.URL, Token: o.Token, HTTP: &http.Client{Transport: tr, Timeout: timeout}}, nil
}
