package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

func (a *app) eventsCommand() *cobra.Command {
	var cf clientFlags
	var output string
	var since int64
	c := &cobra.Command{
		Use:   "events --coordinator URL [--since INDEX] [--output json]",
		Short: "Follow the coordinator's ledger events as they are appended",
		Long: `Follow GET /v1/events: each event appended to the coordinator's transparency
log (request opened, signature accepted, attestation emitted, cancelled, expired,
superseded, policy published, key revoked), one line each, until interrupted. A dropped
connection is resumed after the last event seen, so none is lost or repeated.

--since INDEX starts at that log index (default: events from now on).
--output json prints each event's data (quorate/notification/v1, one JSON
object per line).`,
		Example: "  quorate events --coordinator https://quorate.example:8443 --since 0 --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr("--output %q: want text or json", output)
			}
			if since < -1 {
				return usageErr("--since %d: want a log index", since)
			}
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			err = cl.Events(cmd.Context(), client.EventsOptions{Since: since}, func(ev client.Event) error {
				if output == "json" {
					fmt.Fprintf(a.stdout, "%s\n", ev.Data)
					return nil
				}
				var d client.EventData
				if err := json.Unmarshal(ev.Data, &d); err != nil {
					return fmt.Errorf("event %d: %w", ev.Index, err)
				}
				fmt.Fprintln(a.stdout, eventLine(ev.Index, d))
				return nil
			})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return describeAPIError(err)
		},
	}
	cf.add(c)
	c.Flags().Int64Var(&since, "since", -1, "first log index to show (-1: from now on)")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// eventLine is the text form of one event.
func eventLine(index int64, d client.EventData) string {
	parts := []string{fmt.Sprintf("%-6d", index), d.Time, d.Type}
	for _, kv := range [][2]string{{"request", d.RequestID}, {"gate", d.Gate}, {"role", d.Role}, {"key", shortID(d.KeyID)}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if d.KeyName != "" { // the policy's name of the key: printable, but may hold spaces
		parts = append(parts, "name="+quoteIfSpaced(display.String(d.KeyName)))
	}
	if d.PolicyVersion != 0 && d.RequestID == "" {
		parts = append(parts, fmt.Sprintf("policy=v%d", d.PolicyVersion))
	}
	if r := d.Detail["reason"]; r != "" {
		parts = append(parts, "reason="+r)
	}
	if d.Type == "admission.break_glass" { // detail values passed the ledger's text rules
		for _, k := range []string{"namespace", "kind", "name", "user", "reporter", "justification"} {
			if v := d.Detail[k]; v != "" {
				parts = append(parts, k+"="+v)
			}
		}
	}
	return strings.Join(parts, "  ")
}

// quoteIfSpaced quotes s when it holds a space or a quote, so that a
// key=value line stays one field per pair.
func quoteIfSpaced(s string) string {
	if strings.ContainsAny(s, ` "`) {
		return strconv.Quote(s)
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// waitByEvents follows request id through the event stream: it prints a
// status line whenever the request changes and returns when it ends. done
// is false when the coordinator serves no stream (the caller polls).
func (a *app) waitByEvents(ctx context.Context, cl *client.Client, id string) (done bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	last := ""
	var result error
	finished := false
	// The stream carries no event when a request expires (the sweeper
	// records it later; the coordinator shows it expired on read): look
	// again once its expiry has passed. mu orders that look with the
	// stream's.
	var mu sync.Mutex
	var atExpiry *time.Timer
	defer func() {
		if atExpiry != nil {
			atExpiry.Stop()
		}
	}()
	var check func()
	check = func() {
		v, err := cl.Get(sctx, id)
		if err != nil {
			if sctx.Err() == nil {
				result, finished = describeAPIError(err), true
				cancel()
			}
			return
		}
		finished, result = a.waitLine(v, &last)
		if v.State == signer.Pending && atExpiry == nil {
			atExpiry = time.AfterFunc(time.Until(v.Expires)+100*time.Millisecond, func() {
				mu.Lock()
				defer mu.Unlock()
				if !finished && sctx.Err() == nil {
					check()
				}
			})
		}
		if finished {
			cancel()
		}
	}
	opened := func() {
		mu.Lock()
		defer mu.Unlock()
		check()
	}
	err = cl.Events(sctx, client.EventsOptions{Since: -1, Opened: opened}, func(ev client.Event) error {
		var d client.EventData
		if json.Unmarshal(ev.Data, &d) == nil && d.RequestID == id {
			opened()
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	switch {
	case finished:
		return true, result
	case errors.Is(err, client.ErrNoEventStream):
		return false, nil
	case ctx.Err() != nil:
		return true, fmt.Errorf("gave up waiting for request %s: %w", id, ctx.Err())
	}
	return true, describeAPIError(err)
}
