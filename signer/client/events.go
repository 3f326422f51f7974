package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrNoEventStream: the coordinator serves no GET /v1/events (an older
// coordinator, or one without a transparency log). Poll instead.
var ErrNoEventStream = errors.New("the coordinator serves no event stream (/v1/events)")

// Event is one ledger event of the stream: its log index, type and data
// (the quorate/notification/v1 JSON, without waiting or inclusion).
type Event struct {
	Index int64
	Type  string
	Data  json.RawMessage
}

// EventData is the part of an event's data most callers need.
type EventData struct {
	Type          string            `json:"type"`
	Time          string            `json:"time"`
	Index         int64             `json:"index"`
	RequestID     string            `json:"request_id,omitempty"`
	Gate          string            `json:"gate,omitempty"`
	KeyID         string            `json:"key_id,omitempty"`
	KeyName       string            `json:"key_name,omitempty"`  // the policy's name of the key (display only)
	KeyOwner      string            `json:"key_owner,omitempty"` // and its owner
	Role          string            `json:"role,omitempty"`
	PolicyVersion int64             `json:"policy_version,omitempty"`
	Detail        map[string]string `json:"detail,omitempty"`
}

// EventsOptions configure [Client.Events].
type EventsOptions struct {
	// Since is the first log index wanted; -1 means events appended from
	// now on.
	Since int64
	// Opened, when set, is called once the first connection is open (from
	// then on no event is missed): check state read elsewhere after it.
	Opened func()
	// Reconnect is the wait before reconnecting a dropped stream (default 1s).
	Reconnect time.Duration
}

// Events follows the coordinator's event stream, calling fn for each event
// in log order, reconnecting with Last-Event-ID (so nothing is lost or
// repeated) when the connection drops, until ctx ends or fn returns an
// error (returned as is). It fails with [ErrNoEventStream] when the
// coordinator has no stream.
func (c *Client) Events(ctx context.Context, o EventsOptions, fn func(Event) error) error {
	if o.Reconnect <= 0 {
		o.Reconnect = time.Second
	}
	last := int64(-2) // none seen yet
	opened := false
	for {
		err := c.stream(ctx, o.Since, &last, func() {
			if !opened {
				opened = true
				if o.Opened != nil {
					o.Opened()
				}
			}
		}, fn)
		var fe fnError
		switch {
		case errors.As(err, &fe):
			return fe.err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrNoEventStream):
			return err
		}
		var ae *APIError
		if errors.As(err, &ae) && !ae.Retryable() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Reconnect):
		}
	}
}

type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// stream reads one connection of the stream; *last is the last id seen.
func (c *Client) stream(ctx context.Context, since int64, last *int64, opened func(), fn func(Event) error) error {
	u := strings.TrimRight(c.BaseURL, "/") + "/v1/events"
	if since >= 0 {
		u += "?since=" + strconv.FormatInt(since, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("coordinator URL: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last >= -1 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*last, 10))
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	if hc.Timeout > 0 { // a stream has no end: no overall timeout
		h := *hc
		h.Timeout = 0
		hc = &h
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("contacting coordinator: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		return ErrNoEventStream
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil {
			eb.Error = strings.TrimSpace(string(data))
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Msg: eb.Error}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("%w: answered %s", ErrNoEventStream, ct)
	}
	opened()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var ev Event
	id, hasID := int64(0), false
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // dispatch
			if hasID {
				*last = id
			}
			if ev.Data != nil && hasID {
				ev.Index = id
				if err := fn(ev); err != nil {
					return fnError{err}
				}
			}
			ev, hasID = Event{}, false
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return fmt.Errorf("event stream: id %q is not a log index", value)
			}
			id, hasID = n, true
		case "event":
			ev.Type = value
		case "data":
			ev.Data = append(ev.Data, value...)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return io.ErrUnexpectedEOF
}
