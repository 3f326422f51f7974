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
	// PolicyVersion is the policy version the coordinator enforces (0
	// when it could not be read).
	PolicyVersion int64 `json:"policyVersion,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	var cf clientFlags
	var wait time.Duration
	var minPolicy int64
	output := "text"
	c := &cobra.Command{
		Use:   "status [--coordinator URL] [--wait DURATION]",
		Short: "Say whether the coordinator is ready (and wait until it is)",
		Long: `Ask the coordinator's /readyz whether it is ready to take requests, and
which policy version it enforces. With --wait DURATION, ask again until it is
ready or the time is up: start a coordinator in the background, then
'quorate status --wait 30s' before the first request. With --policy-version
N, ready also means enforcing policy version N or later (after a reload).

Reasons in --output json: ready, not_ready, unreachable, not_a_coordinator,
policy_behind.

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
			st := pollReady(ctx, cl.HTTP, cl.BaseURL, cl.Token, minPolicy, wait > 0)
			if output == "json" {
				if err := writeJSON(a.stdout, st); err != nil {
					return err
				}
			} else if st.Ready {
				fmt.Fprintf(a.stdout, "coordinator %s: ready, enforcing policy v%d\n", st.Coordinator, st.PolicyVersion)
			}
			if !st.Ready {
				return withCode(exitNotVerified, fmt.Errorf("coordinator %s: %s", st.Coordinator, st.Message))
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().DurationVar(&wait, "wait", 0, "ask again until ready, for up to this long (e.g. 30s)")
	c.Flags().Int64Var(&minPolicy, "policy-version", 0, "ready only when enforcing this policy version or a later one")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// pollReady asks base/readyz once, or, with again, until it answers ready
// or ctx ends.
func pollReady(ctx context.Context, hc *http.Client, base, token string, minPolicy int64, again bool) coordinatorStatus {
	if hc == nil {
		hc = http.DefaultClient
	}
	for {
		st := checkReady(ctx, hc, base, token)
		if st.Ready && st.PolicyVersion < minPolicy {
			st.Ready, st.Reason = false, "policy_behind"
			st.Message = fmt.Sprintf("enforcing policy v%d, not yet v%d", st.PolicyVersion, minPolicy)
		}
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

// get sends a GET of base+path with the bearer token, if any.
func get(ctx context.Context, hc *http.Client, base, path, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return hc.Do(req)
}

// policyVersion reads the version of the policy the coordinator enforces;
// 0 when it cannot.
func policyVersion(ctx context.Context, hc *http.Client, base, token string) int64 {
	resp, err := get(ctx, hc, base, "/v1/policy", token)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var v struct {
		Version int64 `json:"version"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&v) != nil {
		return 0
	}
	return v.Version
}

func checkReady(ctx context.Context, hc *http.Client, base, token string) coordinatorStatus {
	st := coordinatorStatus{Coordinator: base}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := get(rctx, hc, base, "/readyz", token)
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
		st.PolicyVersion = policyVersion(rctx, hc, base, token)
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
