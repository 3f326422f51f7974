package display

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "app-1.2.tgz", "app-1.2.tgz"},
		{"accented", "café.tgz", "café.tgz"},
		{"ansi-escape", "\x1b[1A\r\x1b[2Kapp.tgz", `\x1b[1A\x0d\x1b[2Kapp.tgz`},
		{"newline-tab", "a\nb\tc", `a\x0ab\x09c`},
		{"c1-csi", "a\u009bb", `a\u009bb`},
		{"bidi-override", "evil\u202egzt.ppa", `evil\u202egzt.ppa`},
		{"zero-width-joiner", "a\u200db", `a\u200db`},
		{"bom", "\ufeffa", `\ufeffa`},
		{"line-separator", "a\u2028b", `a\u2028b`},
		{"tag-character", "a\U000e0041b", `a\U000e0041b`},
		{"nbsp", "a\u00a0b", `a\u00a0b`},
		{"invalid-utf8", "a\xffb", `a\xffb`},
		{"backslash", `a\x1b`, `a\\x1b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := String(tc.in); got != tc.want {
				t.Fatalf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestWriter(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "subject  app.tgz\n\tx\n", "subject  app.tgz\n\tx\n"},
		{"ansi-escape", "subject  \x1b[1A\r\x1b[2Kapp.tgz\n", `subject  \u001b[1A\u000d\u001b[2Kapp.tgz` + "\n"},
		{"c1-csi", "a\u009b2Kb", `a\u009b2Kb`},
		{"bidi-override", "a\u202eb", `a\u202eb`},
		{"nbsp-kept", "a\u00a0b", "a\u00a0b"},
		{"astral-tag", "a\U000e0041b", `a\udb40\udc41b`},
		{"invalid-utf8", "a\xffb", `a\xffb`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := NewWriter(&b)
			// One byte at a time: sequences split across writes.
			for i := range len(tc.in) {
				if n, err := w.Write([]byte{tc.in[i]}); n != 1 || err != nil {
					t.Fatal(n, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Fatalf("wrote %q, want %q", b.String(), tc.want)
			}
		})
	}
}

// TestWriterJSON: encoding/json leaves C1 controls and bidirectional
// overrides raw; through a Writer they become \u escapes and the document
// decodes to the same value.
func TestWriterJSON(t *testing.T) {
	v := map[string]string{"name": "evil\u202e\u009b\x1b\u2066\U000e0041.tgz", "reason": "line\nline"}
	var b bytes.Buffer
	if err := json.NewEncoder(NewWriter(&b)).Encode(v); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\u202e\u009b\x1b\u2066\U000e0041") {
		t.Fatalf("raw control or bidi character in %q", b.String())
	}
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["name"] != v["name"] || back["reason"] != v["reason"] {
		t.Fatalf("decoded %q, %v; want %q", back, err, v)
	}
}

// TestWriterConcurrent: a logger writes from many goroutines (run with
// -race); every line arrives whole.
func TestWriterConcurrent(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(w, "line %d \u202e\n", i)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "line ") || !strings.HasSuffix(l, ` \u202e`) {
			t.Fatalf("line %q", l)
		}
	}
}
