package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
)

// Errors of [Receive] beside the signature's (from [Verify]).
var (
	// ErrNotAMessage: the signed body is not a quorate/notification/v1
	// message.
	ErrNotAMessage = errors.New("not a quorate/notification/v1 body")
	// ErrNotLogged: the message's inclusion proof does not verify against
	// the log key, or proves another entry than the one it names.
	ErrNotLogged = errors.New("inclusion proof")
)

// Received is a webhook delivery [Receive] accepted.
type Received struct {
	// ID is the webhook-id: a receiver drops a delivery whose ID it has
	// already processed.
	ID      string
	Message Message
	// Logged: the inclusion proof verified against the log key, for the
	// entry at Message.Index (false without a log key, and for reminders,
	// which are no ledger event).
	Logged bool
}

// Receive checks one delivery of the generic JSON format as a receiver
// must: the Standard Webhooks signature under secret, its timestamp within
// [DefaultTolerance] of now ([Verify]); the body a quorate notification
// ([ErrNotAMessage]); and, with a log key (from the receiver's trust
// directory), the inclusion proof of the event it describes
// ([ErrNotLogged]).
func Receive(secret Secret, logKey *keys.PublicKey, origin string, h http.Header, body []byte, now time.Time) (*Received, error) {
	id, err := Verify(secret, h, body, now, DefaultTolerance)
	if err != nil {
		return nil, err
	}
	d := &Received{ID: id}
	if err := json.Unmarshal(body, &d.Message); err != nil {
		return d, fmt.Errorf("%w: %v", ErrNotAMessage, err)
	}
	if logKey != nil && d.Message.Type != ReminderType {
		vs, err := ledger.VerifyBundle(d.Message.Inclusion, logKey, origin)
		switch {
		case err != nil:
			return d, fmt.Errorf("%w: %w", ErrNotLogged, err)
		case len(vs) != 1 || vs[0].Entry.Index != d.Message.Index:
			return d, fmt.Errorf("%w: the proof is not of entry %d alone", ErrNotLogged, d.Message.Index)
		}
		d.Logged = true
	}
	return d, nil
}

// Summary is one line describing the delivery for people: its type, id,
// request, gate, role, who it waits on, and what was verified.
func (d *Received) Summary() string {
	m := &d.Message
	parts := []string{"webhook received:", string(m.Type), "id=" + d.ID}
	for _, kv := range [][2]string{{"request", m.RequestID}, {"gate", m.Gate}, {"role", m.Role}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if m.Waiting != nil {
		var roles []string
		for _, r := range m.Waiting.Missing {
			roles = append(roles, fmt.Sprintf("%s(%d/%d)", r.Role, r.Signed, r.Threshold))
		}
		if len(roles) > 0 {
			parts = append(parts, "waiting-on="+strings.Join(roles, ","))
		}
	}
	verified := "(signature verified"
	if d.Logged {
		verified += fmt.Sprintf(", in the log at %d", m.Index)
	}
	return strings.Join(append(parts, verified), " ") + ")"
}
