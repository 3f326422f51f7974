package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// coordinatorStatus is what 'quorate status' reports; its JSON form is stable.
type coordinatorStatus struct {
	Coordinator string `json:"coordinator"`
	Ready       bool   `json:"ready"`
	// Reason: "ready", "not_ready" (the coordinator answered 503),
	// "unreachable" or "not_a_coordinator".
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	var cf clientFlags
	var wait time.Duration
	output := "text"
	c := &cobra.Command{
		Use:   "status [--coordinator URL] [--wait DURATION]",
		Short: "Say whether the coordinator is ready (and wait until it is)",
		Long: `Ask the coordinator's /readyz whether it is ready to take requests. With
--wait DURATION, ask again until it is ready or the time is up: start a
coordinator in the background, then 'quorate status --wait 30s' before the
first request.

Exit status: 0 ready; 1 not ready or not reachable when the time is up; 2
usage error.`,
		Example: "  quorate serve --trust trust --data state &\n  quorate status --coordinator http://127.0.0.1:7443 --wait 30s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if wait > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, wait)
				defer cancel()
			}
			st := pollReady(ctx, cl.HTTP, cl.BaseURL, cl.Token, wait > 0)
			if output == "json" {
				if err := writeJSON(a.stdout, st); err != nil {
					return err
				}
			} else if st.Ready {
				fmt.Fprintf(a.stdout, "coordinator %s: ready\n", st.Coordinator)
			}
			if !st.Ready {
				return withCode(exitNotVerified, fmt.Errorf("coordinator %s: %s", st.Coordinator, st.Message))
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().DurationVar(&wait, "wait", 0, "ask again until ready, for up to this long (e.g. 30s)")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// pollReady asks base/readyz once, or, with again, until it answers ready
// or ctx ends.
func pollReady(ctx context.Context, hc *http.Client, base, token string, again bool) coordinatorStatus {
	if hc == nil {
		hc = http.DefaultClient
	}
	for {
		st := checkReady(ctx, hc, base, token)
		if st.Ready || !again {
			return st
		}
		select {
		case <-ctx.Done():
			st.Message += " (gave up waiting)"
			return st
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkReady(ctx context.Context, hc *http.Client, base, token string) coordinatorStatus {
	st := coordinatorStatus{Coordinator: base}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/readyz", nil)
	if err != nil {
		st.Reason, st.Message = "unreachable", err.Error()
		return st
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		st.Reason, st.Message = "unreachable", "not reachable: "+unwrapAll(err).Error()
		return st
	}
	defer resp.Body.Close()
	var body struct {
		Status  string `json:"status"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	jerr := json.Unmarshal(data, &body)
	switch {
	case resp.StatusCode == http.StatusOK && jerr == nil && body.Status == "ready":
		st.Ready, st.Reason = true, "ready"
	case resp.StatusCode == http.StatusServiceUnavailable && jerr == nil:
		st.Reason, st.Message = "not_ready", body.Message
		if st.Message == "" {
			st.Message = "not ready"
		}
	default:
		st.Reason, st.Message = "not_a_coordinator", fmt.Sprintf("not a quorate coordinator: HTTP %d", resp.StatusCode)
	}
	return st
}

// unwrapAll returns the innermost error (for "connection refused" rather
// than the whole URL-and-operation chain).
func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
