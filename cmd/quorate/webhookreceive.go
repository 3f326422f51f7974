package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/notify"
)

func (a *app) webhookReceiveCommand() *cobra.Command {
	var listen, addrFile, secretFile, trustDir string
	var count int
	c := &cobra.Command{
		Use:   "receive --listen ADDR --secret-file FILE [--trust DIR] [--count N]",
		Short: "Run a local webhook receiver that verifies and prints deliveries",
		Long: `Listen for generic JSON webhook deliveries (format json), verify each as a
receiver must — the Standard Webhooks signature with the endpoint's secret, a
timestamp within 5 minutes, webhook-ids seen before dropped — and print one
line per new delivery. With --trust DIR the event's inclusion proof is also
verified against the log key of the trust directory. Stops after --count new
deliveries (0: until interrupted). For trying webhooks locally; not a
production receiver.`,
		Example: "  quorate webhook receive --listen 127.0.0.1:9099 --secret-file hook.whsec --trust trust",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if secretFile == "" {
				return usageErr("--secret-file FILE is required")
			}
			raw, err := os.ReadFile(secretFile)
			if err != nil {
				return usageErr("secret: %w", err)
			}
			secret, err := notify.ParseSecret(strings.TrimSpace(string(raw)))
			if err != nil {
				return usageErr("secret %s: %w", secretFile, err)
			}
			var logKey *keys.PublicKey
			origin := ""
			if trustDir != "" {
				t, err := a.loadTrust(trustDir, "", a.now())
				if err != nil {
					return err
				}
				lk, err := t.LogKey()
				if err != nil {
					return usageErr("--trust %s: %w", trustDir, err)
				}
				logKey, origin = lk.Key, lk.Origin
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			if addrFile != "" {
				if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var mu sync.Mutex
			seen := map[string]bool{}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
				if err != nil {
					http.Error(w, "reading body", http.StatusBadRequest)
					return
				}
				line, status := receiveOne(secret, logKey, origin, r.Header, body, a.now())
				mu.Lock()
				defer mu.Unlock()
				id := r.Header.Get(notify.HeaderID)
				if status == http.StatusOK && seen[id] {
					return // a duplicate: acknowledged, not shown again
				}
				fmt.Fprintln(a.stdout, line)
				if status != http.StatusOK {
					http.Error(w, line, status)
					return
				}
				seen[id] = true
				if count > 0 && len(seen) >= count {
					cancel()
				}
			})
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
				defer c()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:9099", "address to listen on")
	c.Flags().StringVar(&addrFile, "addr-file", "", "write the address listened on to this file (with port 0)")
	c.Flags().StringVar(&secretFile, "secret-file", "", "file holding the endpoint's whsec_ secret")
	c.Flags().StringVar(&trustDir, "trust", "", "trust directory whose log key the inclusion proofs must verify against")
	c.Flags().IntVar(&count, "count", 0, "stop after this many new deliveries (0: run until interrupted)")
	return c
}

// receiveOne checks one delivery (notify.Receive) and returns the line to
// print and the status to answer.
func receiveOne(secret notify.Secret, logKey *keys.PublicKey, origin string, h http.Header, body []byte, now time.Time) (string, int) {
	d, err := notify.Receive(secret, logKey, origin, h, body, now)
	switch {
	case errors.Is(err, notify.ErrNotAMessage), errors.Is(err, notify.ErrNotLogged):
		return fmt.Sprintf("webhook %s refused: %v", d.ID, err), http.StatusBadRequest
	case err != nil:
		return "webhook refused: " + err.Error(), http.StatusUnauthorized
	}
	return d.Summary(), http.StatusOK
}
