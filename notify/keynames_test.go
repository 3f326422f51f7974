package notify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/policy"
)

// TestSignatureNamesItsKey: a signature event of a named key says
// "alice (ab12…)" in the title and the Key fact of every format, escaped
// for the format; the JSON body carries key_name and key_owner.
func TestSignatureNamesItsKey(t *testing.T) {
	id := fmt.Sprintf("%064x", 7)
	e := &ledger.Entry{Index: 5, Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Event: ledger.Event{
		Type: ledger.SignatureAccepted, RequestID: "rel-1", KeyID: id, Detail: map[string]string{"role": "maintainers"},
	}}
	m := notify.MessageFromEntry(e, "release")
	m.SetKeyName(policy.KeyNames{id: {Name: "alice <!channel>", Owner: "alice@example.com"}})
	if m.KeyName != "alice <!channel>" || m.KeyOwner != "alice@example.com" {
		t.Fatalf("key name %q owner %q", m.KeyName, m.KeyOwner)
	}
	for _, tc := range []struct {
		format notify.Format
		want   []string
		never  []string
	}{
		{notify.FormatJSON, []string{`"key_name":"alice \u003c!channel\u003e"`, `"key_owner":"alice@example.com"`}, nil},
		{notify.FormatSlack, []string{`Signature accepted from alice \u0026lt;!channel\u0026gt; (` + id[:12] + `): rel-1`, `*Key*\n` + "`" + `alice \u0026lt;!channel\u0026gt; (` + id + `)`, "*Key owner*"}, []string{"<!channel>"}},
		{notify.FormatTeams, []string{"Signature accepted from alice"}, []string{"<!channel>"}},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			b, err := notify.Render(tc.format, m)
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %s:\n%s", s, body)
				}
			}
			for _, s := range tc.never {
				if strings.Contains(body, s) {
					t.Errorf("body holds %s raw:\n%s", s, body)
				}
			}
		})
	}
	// An unnamed key: the title is unchanged, the Key fact is the key ID.
	m = notify.MessageFromEntry(e, "release")
	m.SetKeyName(policy.KeyNames{fmt.Sprintf("%064x", 8): {Name: "bob"}})
	if b, _ := notify.Render(notify.FormatSlack, m); !strings.Contains(string(b), `"Signature accepted: rel-1"`) || !strings.Contains(string(b), id) {
		t.Errorf("unnamed key: %s", b)
	}
}
