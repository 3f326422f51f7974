package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/ledger"
)

// SampleMessage is a plausible notification of event type t, marked as a
// sample (Sample true, no inclusion proof): what 'quorate webhook test'
// sends to try an endpoint. It refuses a t that is not in [EventTypes].
func SampleMessage(t ledger.EventType, now time.Time) (*Message, error) {
	known := false
	for _, k := range EventTypes() {
		known = known || k == t
	}
	if !known {
		return nil, fmt.Errorf("%q is not an event type", t)
	}
	m := &Message{
		Format: MessageFormat, ID: "sample-" + now.UTC().Format("20060102T150405Z"), Type: t,
		Time: now.UTC().Format(ledger.TimeLayout), RequestID: "sample-release-1.0.0", Gate: "release", PolicyVersion: 1, Sample: true,
		Waiting: &Waiting{ExpiresAt: now.Add(24 * time.Hour).UTC().Format(time.RFC3339), Missing: []MissingRole{
			{Role: "security", Threshold: 1, Signed: 0, Waiting: []Person{{KeyID: strings.Repeat("ab", 32), Name: "Security on-call"}}},
		}},
	}
	switch t {
	case ledger.SignatureAccepted:
		m.KeyID, m.Role = strings.Repeat("cd", 32), "maintainers"
	case ledger.PolicyPublished, ledger.RootPublished, ledger.KeyRevoked:
		m.RequestID, m.Gate, m.Waiting = "", "", nil
	case ReminderType:
		m.Reminder = &ReminderInfo{Reason: ReasonWaiting, Role: "security", Since: now.Add(-4 * time.Hour).UTC().Format(time.RFC3339)}
	}
	return m, nil
}
