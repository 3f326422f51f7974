package main

import (
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/signer/client"
)

// TestEventLineNamesKey: quorate events names a named key beside its short
// ID, escaped, quoted when it holds a space.
func TestEventLineNamesKey(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, keyName, want string
	}{
		{"unnamed", "", "key=abababababab"},
		{"named", "alice", "key=abababababab  name=alice"},
		{"name with a space", "Alice Liddell", `key=abababababab  name="Alice Liddell"`},
		{"escape in a name", "al\x1bice", `name=al\x1bice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := eventLine(3, client.EventData{Type: "signature.accepted", Time: "2030-01-01T00:00:00Z", RequestID: "r1", KeyID: id, KeyName: tc.keyName})
			if !strings.Contains(line, tc.want) || strings.Contains(line, "\x1b") {
				t.Errorf("%q lacks %q", line, tc.want)
			}
			if tc.keyName == "" && strings.Contains(line, "name=") {
				t.Errorf("%q names an unnamed key", line)
			}
		})
	}
}
