package notify

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/roles"
)

// MessageFormat is the "format" field of every generic JSON notification.
const MessageFormat = "quorate/notification/v1"

// Message is one notification, and the generic JSON body ([FormatJSON])
// as documented in docs/notifications.md. Slack and Teams bodies are
// rendered from it. Fields that came from a request (IDs, gates, roles,
// detail values, names) are as logged; each format escapes them for its
// target.
type Message struct {
	Format string `json:"format"`
	// ID is the webhook-id: the log index in decimal for an event, a
	// derived name for a reminder ("reminder-<request>-<role>-<index>").
	ID   string           `json:"id"`
	Type ledger.EventType `json:"type"`
	// Time is the logged time of the event (ledger.TimeLayout), or the
	// time the reminder became due.
	Time string `json:"time"`
	// Index is the log index of the event; for a reminder, of the event
	// the wait started from.
	Index     int64  `json:"index"`
	RequestID string `json:"request_id,omitempty"`
	Gate      string `json:"gate,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	// KeyName and KeyOwner are the display name and owner the policy
	// gives KeyID (policy.KeyNamesField; display only), if any.
	KeyName       string            `json:"key_name,omitempty"`
	KeyOwner      string            `json:"key_owner,omitempty"`
	Role          string            `json:"role,omitempty"`
	PolicyVersion int64             `json:"policy_version,omitempty"`
	Detail        map[string]string `json:"detail,omitempty"`
	// Waiting says who the request still waits on (pending requests).
	Waiting *Waiting `json:"waiting,omitempty"`
	// Reminder says why a reminder was sent.
	Reminder *ReminderInfo `json:"reminder,omitempty"`
	// Inclusion proves the event's entry is in the log: a ledger bundle
	// (quorate/ledger-bundle/v1) with the signed checkpoint, the entry's
	// canonical bytes and its inclusion proof. Verify it with
	// ledger.VerifyBundle against the log key of the trust directory.
	// Absent for reminders and samples.
	Inclusion *ledger.Bundle `json:"inclusion,omitempty"`
	// Sample marks a test delivery (quorate webhook test).
	Sample bool `json:"sample,omitempty"`
}

// Waiting is who a pending request waits on.
type Waiting struct {
	// ExpiresAt is when the request expires (RFC 3339), if known.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Missing lists the roles of the gate below their threshold, in the
	// gate's order.
	Missing []MissingRole `json:"missing"`
}

// MissingRole is one role a request still needs.
type MissingRole struct {
	Role      string `json:"role"`
	Threshold int    `json:"threshold"`
	Signed    int    `json:"signed"`
	// Waiting are the holders of the role's keys that have not signed,
	// with their names where the policy or the coordinator knows them.
	Waiting []Person `json:"waiting"`
}

// Need is how many more signatures the role needs.
func (m MissingRole) Need() int { return max(m.Threshold-m.Signed, 0) }

// Person is a key holder, with the display name and owner the policy
// gives the key (display only), if any.
type Person struct {
	KeyID string `json:"key_id"`
	Name  string `json:"name,omitempty"`
	Owner string `json:"owner,omitempty"`
}

// ReminderInfo says why a reminder was sent.
type ReminderInfo struct {
	// Reason is "waiting" (a role waited longer than the configured time)
	// or "expiry" (the request expires soon).
	Reason string `json:"reason"`
	// Role is the role waited on (reason "waiting").
	Role string `json:"role,omitempty"`
	// Since is when the wait started (RFC 3339).
	Since string `json:"since,omitempty"`
}

// Reminder reasons.
const (
	ReasonWaiting = "waiting"
	ReasonExpiry  = "expiry"
)

// WaitingFrom builds [Waiting] from a gate's tally results: every role
// below its threshold, with the keys of the role that have not been
// counted. names are the policy's key names (nil: no names).
func WaitingFrom(set *roles.Set, results []roles.RoleResult, names policy.KeyNames, expires time.Time) *Waiting {
	w := &Waiting{Missing: []MissingRole{}}
	if !expires.IsZero() {
		w.ExpiresAt = expires.UTC().Format(time.RFC3339)
	}
	for _, r := range results {
		if r.Met() {
			continue
		}
		m := MissingRole{Role: r.Role, Threshold: r.Threshold, Signed: len(r.Counted), Waiting: []Person{}}
		counted := map[string]bool{}
		for _, c := range r.Counted {
			counted[c.KeyID] = true
		}
		if role := set.Roles[r.Role]; role != nil {
			for _, id := range role.KeyIDs {
				if !counted[id] {
					m.Waiting = append(m.Waiting, Person{KeyID: id, Name: names[id].Name, Owner: names[id].Owner})
				}
			}
		}
		w.Missing = append(w.Missing, m)
	}
	return w
}

// MessageFromEntry builds the message of a logged event. gate is the
// request's gate ("" when unknown or not a request event).
func MessageFromEntry(e *ledger.Entry, gate string) *Message {
	m := &Message{
		Format:        MessageFormat,
		ID:            EventMessageID(e.Index),
		Type:          e.Type,
		Time:          e.Time.Format(ledger.TimeLayout),
		Index:         e.Index,
		RequestID:     e.RequestID,
		Gate:          gate,
		KeyID:         e.KeyID,
		PolicyVersion: e.PolicyVersion,
	}
	if len(e.Detail) > 0 {
		m.Detail = maps.Clone(e.Detail)
		if m.Gate == "" {
			m.Gate = e.Detail["gate"]
		}
		m.Role = e.Detail["role"]
	}
	return m
}

// EventMessageID is the webhook-id of the event at log index i: the index
// in decimal, the same for every attempt and every replica.
func EventMessageID(i int64) string { return strconv.FormatInt(i, 10) }

// ReminderMessageID is the webhook-id of a reminder: derived from the
// request, the reason (role) and the log index the wait started from, so
// every replica computes the same id for the same reminder.
func ReminderMessageID(requestID, reason, role string, since int64) string {
	if reason == ReasonExpiry {
		return fmt.Sprintf("reminder-%s-expiry-%d", requestID, since)
	}
	return fmt.Sprintf("reminder-%s-%s-%d", requestID, role, since)
}

// title is the one-line summary of a message, from fixed words and the
// (unescaped) request ID; formats escape it.
func (m *Message) title() string {
	what := map[ledger.EventType]string{
		ledger.RequestOpened:       "Signing request opened",
		ledger.SignatureAccepted:   "Signature accepted",
		ledger.AttestationEmitted:  "Threshold met: composite attestation emitted",
		ledger.RequestCancelled:    "Signing request cancelled",
		ledger.RequestExpired:      "Signing request expired",
		ledger.RequestSuperseded:   "Signing request superseded by a policy change",
		ledger.PolicyPublished:     "Policy published",
		ledger.RootPublished:       "Root of trust published",
		ledger.KeyRevoked:          "Key revoked",
		ledger.AdmissionBreakGlass: "Break-glass admission",
		ReminderType:               "Reminder: signing request waiting",
	}[m.Type]
	if what == "" {
		what = string(m.Type)
	}
	if m.Type == ReminderType && m.Reminder != nil && m.Reminder.Reason == ReasonExpiry {
		what = "Reminder: signing request expires soon"
	}
	if m.Sample {
		what = "[test] " + what
	}
	if m.Type == ledger.SignatureAccepted && m.KeyName != "" {
		what += " from " + m.keyLabel()
	}
	if m.RequestID != "" {
		return what + ": " + m.RequestID
	}
	return what
}

// keyLabel is "alice (ab12cd34ef56)" for a named key, else its short ID
// (unescaped; formats escape it).
func (m *Message) keyLabel() string {
	if m.KeyName == "" {
		return shortKey(m.KeyID)
	}
	return m.KeyName + " (" + shortKey(m.KeyID) + ")"
}

// SetKeyName names the message's key from the policy's names, if it is
// named there.
func (m *Message) SetKeyName(names policy.KeyNames) {
	if n, ok := names[m.KeyID]; ok && m.KeyID != "" {
		m.KeyName, m.KeyOwner = n.Name, n.Owner
	}
}

// facts are the message's label/value pairs in display order; values are
// unescaped.
func (m *Message) facts() [][2]string {
	var f [][2]string
	add := func(k, v string) {
		if v != "" {
			f = append(f, [2]string{k, v})
		}
	}
	add("Request", m.RequestID)
	add("Gate", m.Gate)
	add("Role", m.Role)
	if m.KeyName != "" {
		add("Key", m.KeyName+" ("+m.KeyID+")")
	} else {
		add("Key", m.KeyID)
	}
	add("Key owner", m.KeyOwner)
	if m.PolicyVersion > 0 {
		add("Policy version", strconv.FormatInt(m.PolicyVersion, 10))
	}
	for _, k := range slices.Sorted(maps.Keys(m.Detail)) {
		if k != "gate" && k != "role" {
			add("Detail "+k, m.Detail[k])
		}
	}
	add("Log index", strconv.FormatInt(m.Index, 10))
	if m.Reminder != nil && m.Reminder.Since != "" {
		add("Waiting since", m.Reminder.Since)
	}
	if m.Waiting != nil {
		add("Expires", m.Waiting.ExpiresAt)
	}
	return f
}

// waitingLines says who the request waits on, one line per missing role
// (unescaped; each format escapes the parts).
func (m *Message) waitingLines() []waitLine {
	if m.Waiting == nil {
		return nil
	}
	var out []waitLine
	for _, r := range m.Waiting.Missing {
		l := waitLine{role: r.Role, need: r.Need(), threshold: r.Threshold}
		for _, p := range r.Waiting {
			who := p.Name
			if who == "" {
				who = shortKey(p.KeyID)
			}
			l.people = append(l.people, who)
		}
		out = append(out, l)
	}
	return out
}

type waitLine struct {
	role            string
	need, threshold int
	people          []string
}

func shortKey(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
