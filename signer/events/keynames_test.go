package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/events"
)

// TestEventsNameKeys: with Config.KeyNames, an event of a named key carries
// its name and owner; an unnamed key's carries none.
func TestEventsNameKeys(t *testing.T) {
	named := fmt.Sprintf("%064x", 1)
	s, srv := world(t, events.Config{KeyNames: func() policy.KeyNames {
		return policy.KeyNames{named: {Name: "alice", Owner: "alice@example.com"}}
	}})
	appendRevocations(t, s, 0, 2) // keys 0 (unnamed) and 1 (alice)
	var got []client.EventData
	err := (&client.Client{BaseURL: srv.URL}).Events(t.Context(), client.EventsOptions{Since: 0}, func(ev client.Event) error {
		var d client.EventData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		if got = append(got, d); len(got) == 2 {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("Events: %v", err)
	}
	if got[0].KeyName != "" || got[1].KeyID != named || got[1].KeyName != "alice" || got[1].KeyOwner != "alice@example.com" {
		t.Fatalf("events %+v: want key 1 named alice <alice@example.com>, key 0 unnamed", got)
	}
}
