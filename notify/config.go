package notify

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/roles"
)

// Format is how an endpoint's deliveries are written.
type Format string

// Formats.
const (
	// FormatJSON is the generic JSON document described in
	// docs/notifications.md ([Message]).
	FormatJSON Format = "json"
	// FormatSlack is a Slack incoming-webhook message with Block Kit blocks.
	FormatSlack Format = "slack"
	// FormatTeams is a Microsoft Teams message carrying an Adaptive Card
	// (incoming webhook or Workflows "post to a channel when a webhook
	// request is received").
	FormatTeams Format = "teams"
)

// Formats lists the formats in a stable order.
func Formats() []Format { return []Format{FormatJSON, FormatSlack, FormatTeams} }

// ReminderType is the event type of a reminder notification. Reminders are
// not ledger events: they are sent when a request has waited on a role
// longer than an endpoint's configured time, and once before it expires.
const ReminderType ledger.EventType = "request.reminder"

// EventTypes lists every type an endpoint may subscribe to: the ledger's
// event types and [ReminderType].
func EventTypes() []ledger.EventType { return append(ledger.EventTypes(), ReminderType) }

// MaxConfigSize bounds a webhook configuration file.
const MaxConfigSize = 1 << 20

// Config is a parsed, checked webhook configuration. Use [LoadConfig] or
// [ParseConfig]; a Config built by hand is not checked.
type Config struct {
	Endpoints []*Endpoint
}

// Endpoint returns the endpoint named name, or nil.
func (c *Config) Endpoint(name string) *Endpoint {
	for _, e := range c.Endpoints {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Endpoint is one webhook receiver.
type Endpoint struct {
	// Name identifies the endpoint in metrics, logs and the outbox
	// (lowercase letters, digits, '.', '_', '-').
	Name string
	// URL is where deliveries are POSTed. It may be a credential itself
	// (Slack and Teams webhook URLs are): it never appears in errors or
	// logs, [Endpoint.Redacted] does.
	URL *url.URL
	// Format of the body.
	Format Format
	// Secret signs every delivery (Standard Webhooks).
	Secret Secret
	// Events are the types delivered; empty means all of [EventTypes].
	Events []ledger.EventType
	// Gates restricts request events to requests of these gates; empty
	// means all. Events not about a request (policy.published, key.revoked,
	// root.published) are not filtered by gate; admission.break_glass is
	// filtered by the gate it names.
	Gates []string
	// Reminders are the per-gate reminder times; the gate "*" applies to
	// gates without their own entry.
	Reminders map[string]Reminder
}

// Reminder says when a pending request's waiting is re-notified.
type Reminder struct {
	// After is how long a request may wait on a role (since it was opened
	// or the role's last accepted signature) before a reminder; 0: never.
	After time.Duration
	// BeforeExpiry sends one reminder this long before the request
	// expires; 0: never.
	BeforeExpiry time.Duration
}

// Redacted returns the endpoint's URL without path, query or user
// information, for logs and errors.
func (e *Endpoint) Redacted() string {
	if e.URL == nil {
		return ""
	}
	return e.URL.Scheme + "://" + e.URL.Host + "/…"
}

// Wants reports whether the endpoint subscribes to events of type t about
// a request of the given gate ("" for events not about a request).
func (e *Endpoint) Wants(t ledger.EventType, gate string) bool {
	if len(e.Events) > 0 && !slices.Contains(e.Events, t) {
		return false
	}
	if len(e.Gates) > 0 && gate != "" && !slices.Contains(e.Gates, gate) {
		return false
	}
	return true
}

// ReminderFor returns the reminder times for gate.
func (e *Endpoint) ReminderFor(gate string) Reminder {
	if r, ok := e.Reminders[gate]; ok {
		return r
	}
	return e.Reminders["*"]
}

// The file's JSON shape.
type fileConfig struct {
	Endpoints []fileEndpoint `json:"endpoints"`
}

type fileEndpoint struct {
	Name          string                  `json:"name"`
	URL           string                  `json:"url"`
	URLFile       string                  `json:"urlFile"`
	URLEnv        string                  `json:"urlEnv"`
	Format        string                  `json:"format"`
	Secret        *fileSecret             `json:"secret"`
	Events        []string                `json:"events"`
	Gates         []string                `json:"gates"`
	Reminders     map[string]fileReminder `json:"reminders"`
	AllowInsecure bool                    `json:"allowInsecure"`
}

type fileSecret struct {
	File string `json:"file"`
	Env  string `json:"env"`
}

type fileReminder struct {
	After        string `json:"after"`
	BeforeExpiry string `json:"beforeExpiry"`
}

// ErrConfig marks a refused webhook configuration.
var ErrConfig = errors.New("invalid webhook configuration")

var (
	endpointNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	envNameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// LoadConfig reads and checks the webhook configuration file at path;
// relative secret and URL file names are relative to its directory. getenv
// reads the environment (os.Getenv when nil).
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrConfig, path, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, MaxConfigSize)
	}
	c, err := ParseConfig(data, filepath.Dir(path), getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and checks a webhook configuration (JSON, see
// docs/notifications.md). It refuses duplicate and unknown fields, an
// unknown event type or format, an http URL outside loopback without
// "allowInsecure", a missing, inline, unreadable or malformed secret and
// duplicate endpoint names; errors wrap [ErrConfig] and name the endpoint.
// Secrets are read here, from files under dir (when relative) or the
// environment.
func ParseConfig(data []byte, dir string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var fc fileConfig
	if err := strictjson.Unmarshal(data, &fc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(fc.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints", ErrConfig)
	}
	c := &Config{}
	seen := map[string]bool{}
	for i, fe := range fc.Endpoints {
		e, err := fe.parse(dir, getenv)
		if err != nil {
			name := fe.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			} else {
				name = fmt.Sprintf("%q", name)
			}
			return nil, fmt.Errorf("%w: endpoint %s: %w", ErrConfig, name, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%w: endpoint %q: name used twice", ErrConfig, e.Name)
		}
		seen[e.Name] = true
		c.Endpoints = append(c.Endpoints, e)
	}
	return c, nil
}

func (fe *fileEndpoint) parse(dir string, getenv func(string) string) (*Endpoint, error) {
	if !endpointNameRE.MatchString(fe.Name) {
		return nil, errors.New("name: want 1-64 lowercase letters, digits, '.', '_' or '-' starting with a letter or digit")
	}
	e := &Endpoint{Name: fe.Name, Format: Format(fe.Format)}
	if fe.Format == "" {
		e.Format = FormatJSON
	}
	if !slices.Contains(Formats(), e.Format) {
		return nil, fmt.Errorf("format %q is unknown (want one of %s)", fe.Format, joinFormats())
	}
	raw, err := fe.rawURL(dir, getenv)
	if err != nil {
		return nil, err
	}
	if e.URL, err = checkURL(raw, fe.AllowInsecure); err != nil {
		return nil, err
	}
	if e.Secret, err = fe.Secret.load(dir, getenv); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	for _, t := range fe.Events {
		et := ledger.EventType(t)
		if !slices.Contains(EventTypes(), et) {
			return nil, fmt.Errorf("events: %q is not an event type (want one of %s)", t, joinTypes())
		}
		if slices.Contains(e.Events, et) {
			return nil, fmt.Errorf("events: %q listed twice", t)
		}
		e.Events = append(e.Events, et)
	}
	for _, g := range fe.Gates {
		if err := roles.CheckName("gate", g); err != nil {
			return nil, fmt.Errorf("gates: %w", err)
		}
		if slices.Contains(e.Gates, g) {
			return nil, fmt.Errorf("gates: %q listed twice", g)
		}
		e.Gates = append(e.Gates, g)
	}
	for gate, fr := range fe.Reminders {
		if gate != "*" {
			if err := roles.CheckName("gate", gate); err != nil {
				return nil, fmt.Errorf("reminders: %w", err)
			}
		}
		var r Reminder
		if r.After, err = parseDuration(fr.After); err != nil {
			return nil, fmt.Errorf("reminders %q: after: %w", gate, err)
		}
		if r.BeforeExpiry, err = parseDuration(fr.BeforeExpiry); err != nil {
			return nil, fmt.Errorf("reminders %q: beforeExpiry: %w", gate, err)
		}
		if r.After == 0 && r.BeforeExpiry == 0 {
			return nil, fmt.Errorf("reminders %q: neither after nor beforeExpiry is set", gate)
		}
		if e.Reminders == nil {
			e.Reminders = map[string]Reminder{}
		}
		e.Reminders[gate] = r
	}
	return e, nil
}

// rawURL returns the URL from exactly one of url, urlFile and urlEnv.
func (fe *fileEndpoint) rawURL(dir string, getenv func(string) string) (string, error) {
	set := 0
	for _, s := range []string{fe.URL, fe.URLFile, fe.URLEnv} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return "", errors.New("want exactly one of url, urlFile and urlEnv")
	}
	switch {
	case fe.URLFile != "":
		b, err := readSmallFile(resolve(dir, fe.URLFile))
		if err != nil {
			return "", fmt.Errorf("urlFile: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case fe.URLEnv != "":
		if !envNameRE.MatchString(fe.URLEnv) {
			return "", fmt.Errorf("urlEnv: %q is not an environment variable name", fe.URLEnv)
		}
		v := strings.TrimSpace(getenv(fe.URLEnv))
		if v == "" {
			return "", fmt.Errorf("urlEnv: environment variable %s is unset or empty", fe.URLEnv)
		}
		return v, nil
	}
	return fe.URL, nil
}

// checkURL accepts https URLs, and http URLs on a loopback address or with
// allowInsecure. The URL itself is never quoted in errors (it may hold a
// token).
func checkURL(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("url: not a valid URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, errors.New("url: not an absolute URL with a host")
	}
	if u.User != nil {
		return nil, errors.New("url: user information is not allowed (use a secret)")
	}
	if u.Fragment != "" {
		return nil, errors.New("url: a fragment is not allowed")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowInsecure && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("url: http to %s is not loopback: use https, or set \"allowInsecure\": true to send deliveries in clear text", u.Hostname())
		}
	default:
		return nil, fmt.Errorf("url: scheme %q is not https (or http)", u.Scheme)
	}
	return u, nil
}

// isLoopback reports whether host is "localhost" or a loopback IP literal.
// Other names are not resolved: a name may resolve elsewhere later.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *fileSecret) load(dir string, getenv func(string) string) (Secret, error) {
	if s == nil || (s.File == "" && s.Env == "") {
		return nil, errors.New(`missing: give "secret": {"file": PATH} or {"env": NAME} (secrets are never inline)`)
	}
	if s.File != "" && s.Env != "" {
		return nil, errors.New("give file or env, not both")
	}
	var text string
	if s.File != "" {
		b, err := readSmallFile(resolve(dir, s.File))
		if err != nil {
			return nil, err
		}
		text = strings.TrimSpace(string(b))
		if text == "" {
			return nil, fmt.Errorf("file %s is empty", s.File)
		}
	} else {
		if !envNameRE.MatchString(s.Env) {
			return nil, fmt.Errorf("env: %q is not an environment variable name", s.Env)
		}
		text = strings.TrimSpace(getenv(s.Env))
		if text == "" {
			return nil, fmt.Errorf("environment variable %s is unset or empty", s.Env)
		}
	}
	sec, err := ParseSecret(text)
	if err != nil {
		where := "file " + s.File
		if s.Env != "" {
			where = "environment variable " + s.Env
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return sec, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 90m or 4h", s)
	}
	if d < time.Minute {
		return 0, fmt.Errorf("%s is shorter than a minute", d)
	}
	return d, nil
}

func resolve(dir, name string) string {
	if filepath.IsAbs(name) || dir == "" {
		return name
	}
	return filepath.Join(dir, name)
}

// readSmallFile reads at most 64 KiB; errors name the file, never its content.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > 64<<10 {
		return nil, fmt.Errorf("%s is larger than 64 KiB", path)
	}
	return b, nil
}

func joinFormats() string {
	var s []string
	for _, f := range Formats() {
		s = append(s, string(f))
	}
	return strings.Join(s, ", ")
}

func joinTypes() string {
	var s []string
	for _, t := range EventTypes() {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}
