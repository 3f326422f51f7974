package admission

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServerOptions configure [NewServer].
type ServerOptions struct {
	// CertFile and KeyFile hold the server's PEM certificate chain and key.
	// They are re-read when they change (cert-manager renews in place).
	CertFile, KeyFile string
	// Ready reports whether the verifier can decide (for /readyz); nil
	// means always ready.
	Ready func(context.Context) error
	// Gatherer, when set, is served at /metrics.
	Gatherer prometheus.Gatherer
}

// NewServer returns an HTTPS server for h: /validate/<rule>, /healthz,
// /readyz and, with a Gatherer, /metrics. TLS 1.2 or later is required
// (the API server only calls webhooks over TLS); the timeouts bound slow
// clients. Serve it with srv.ServeTLS(listener, "", "").
func NewServer(h *Handler, o ServerOptions) (*http.Server, error) {
	certs, err := newCertReloader(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/validate/", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := o.Ready(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	return &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second, // the API server waits at most 30 s
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}, nil
}

// certReloader serves the key pair in certFile/keyFile, re-reading it when
// either file's modification time or size changes. A pair that fails to
// load keeps the previous one in use.
type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             string
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("admission: TLS is required: give a certificate and a key file")
	}
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := c.get(nil); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp, err := c.fileStamp()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || stamp == c.stamp {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, fmt.Errorf("admission: TLS key pair: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, fmt.Errorf("admission: TLS key pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.stamp = &cert, stamp
	return c.cert, nil
}

func (c *certReloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

// writeJSON writes v; an encoding failure (impossible for the types
// written here) becomes a 500.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the response failed", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}
