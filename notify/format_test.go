package notify_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// hostile is a message whose request-derived strings try to inject: a
// Slack mention and a disguised link, Markdown link and emphasis, a
// right-to-left override and a terminal escape.
func hostile() *notify.Message {
	e := &ledger.Entry{Index: 42, Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Event: ledger.Event{
		Type: ledger.RequestCancelled, RequestID: "rel-1.2_rc:3", KeyID: fmt.Sprintf("%064x", 7),
		Detail: map[string]string{"reason": "<!channel> <https://evil.example|click> & [docs](https://evil.example) *now* \u202egnp.exe \x1b[2J"},
	}}
	m := notify.MessageFromEntry(e, "release")
	m.Waiting = &notify.Waiting{ExpiresAt: "2026-12-02T10:00:00Z", Missing: []notify.MissingRole{{Role: "security", Threshold: 2, Signed: 1,
		Waiting: []notify.Person{{KeyID: fmt.Sprintf("%064x", 8), Name: "Mallory <@U123> \u202e"}, {KeyID: fmt.Sprintf("%064x", 9)}}}}}
	return m
}

func render(t *testing.T, f notify.Format, m *notify.Message) (map[string]any, string) {
	t.Helper()
	b, err := notify.Render(f, m)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(b) {
		t.Fatal("body is not UTF-8")
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v", err)
	}
	return v, string(b)
}

// strings collects every string value in v.
func allStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			allStrings(e, out)
		}
	case map[string]any:
		for _, e := range x {
			allStrings(e, out)
		}
	}
}

func field[T any](t *testing.T, obj any, path, key string) T {
	t.Helper()
	m, ok := obj.(map[string]any)
	if !ok {
		t.Fatalf("%s is not an object: %v", path, obj)
	}
	v, ok := m[key].(T)
	if !ok {
		t.Fatalf("%s.%s: %T %v, not the documented type", path, key, m[key], m[key])
	}
	return v
}

// TestSlackShape checks the Slack incoming-webhook message against Block
// Kit's documented shape: "text" (string), "blocks" (array, at most 50);
// header: plain_text text <= 150; section: text object or fields (<= 10,
// each text <= 2000); context: elements of text objects; text objects have
// type plain_text|mrkdwn and a string text.
func TestSlackShape(t *testing.T) {
	v, raw := render(t, notify.FormatSlack, hostile())
	field[string](t, v, "$", "text")
	blocks := field[[]any](t, v, "$", "blocks")
	if len(blocks) == 0 || len(blocks) > 50 {
		t.Fatalf("%d blocks", len(blocks))
	}
	checkText := func(path string, o any, max int) {
		typ := field[string](t, o, path, "type")
		if typ != "plain_text" && typ != "mrkdwn" {
			t.Fatalf("%s.type = %q", path, typ)
		}
		if s := field[string](t, o, path, "text"); s == "" || utf8.RuneCountInString(s) > max {
			t.Fatalf("%s.text has %d characters (1 to %d)", path, utf8.RuneCountInString(s), max)
		}
	}
	for i, b := range blocks {
		p := fmt.Sprintf("blocks[%d]", i)
		switch typ := field[string](t, b, p, "type"); typ {
		case "header":
			checkText(p+".text", field[map[string]any](t, b, p, "text"), 150)
			if field[string](t, field[map[string]any](t, b, p, "text"), p, "type") != "plain_text" {
				t.Fatalf("%s: header text must be plain_text", p)
			}
		case "section":
			m := b.(map[string]any)
			if m["text"] == nil && m["fields"] == nil {
				t.Fatalf("%s: section without text or fields", p)
			}
			if m["text"] != nil {
				checkText(p+".text", m["text"], 3000)
			}
			if m["fields"] != nil {
				fs := field[[]any](t, b, p, "fields")
				if len(fs) > 10 {
					t.Fatalf("%s: %d fields", p, len(fs))
				}
				for j, f := range fs {
					checkText(fmt.Sprintf("%s.fields[%d]", p, j), f, 2000)
				}
			}
		case "context":
			for j, e := range field[[]any](t, b, p, "elements") {
				checkText(fmt.Sprintf("%s.elements[%d]", p, j), e, 3000)
			}
		default:
			t.Fatalf("%s: unexpected block type %q", p, typ)
		}
	}
	var ss []string
	allStrings(v, &ss)
	for _, s := range ss {
		for _, bad := range []string{"<!channel>", "<https://", "<@U123>", "\u202e", "\x1b"} {
			if strings.Contains(s, bad) {
				t.Fatalf("unescaped %q in %q", bad, s)
			}
		}
	}
	all := strings.Join(ss, "\n")
	for _, want := range []string{"&lt;!channel&gt;", "&amp;", `\u202e`, "Mallory", "security", "1 more of 2"} {
		if !strings.Contains(all, want) {
			t.Errorf("body lacks %q: %s", want, raw)
		}
	}
}

// TestTeamsShape checks the Teams message against the documented shape
// for incoming webhooks and Workflows: {"type":"message","attachments":[
// {"contentType":"application/vnd.microsoft.card.adaptive","content":
// {"type":"AdaptiveCard","version":"1.x","body":[...]}}]}; TextBlock has a
// string text; FactSet has facts of {title, value} strings.
func TestTeamsShape(t *testing.T) {
	v, _ := render(t, notify.FormatTeams, hostile())
	if field[string](t, v, "$", "type") != "message" {
		t.Fatal(`type is not "message"`)
	}
	atts := field[[]any](t, v, "$", "attachments")
	if len(atts) != 1 {
		t.Fatalf("%d attachments", len(atts))
	}
	if ct := field[string](t, atts[0], "attachments[0]", "contentType"); ct != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("contentType %q", ct)
	}
	card := field[map[string]any](t, atts[0], "attachments[0]", "content")
	if field[string](t, card, "content", "type") != "AdaptiveCard" || !strings.HasPrefix(field[string](t, card, "content", "version"), "1.") {
		t.Fatalf("content is not an Adaptive Card 1.x: %v", card)
	}
	field[string](t, card, "content", "$schema")
	for i, e := range field[[]any](t, card, "content", "body") {
		p := fmt.Sprintf("body[%d]", i)
		switch typ := field[string](t, e, p, "type"); typ {
		case "TextBlock":
			field[string](t, e, p, "text")
		case "FactSet":
			for j, f := range field[[]any](t, e, p, "facts") {
				field[string](t, f, fmt.Sprintf("%s.facts[%d]", p, j), "title")
				field[string](t, f, fmt.Sprintf("%s.facts[%d]", p, j), "value")
			}
		default:
			t.Fatalf("%s: unexpected element %q", p, typ)
		}
	}
	var ss []string
	allStrings(v, &ss)
	for _, s := range ss {
		for _, bad := range []string{"[docs](", "*now*", "\u202e", "\x1b", "<@U123>"} {
			if strings.Contains(s, bad) {
				t.Fatalf("unescaped %q in %q", bad, s)
			}
		}
	}
}

// TestGenericJSONSchema: the generic body carries the documented fields
// with their types, the raw text of request strings (as JSON), and no raw
// bidirectional or control character.
func TestGenericJSONSchema(t *testing.T) {
	v, raw := render(t, notify.FormatJSON, hostile())
	if field[string](t, v, "$", "format") != notify.MessageFormat || field[string](t, v, "$", "id") != "42" ||
		field[float64](t, v, "$", "index") != 42 || field[string](t, v, "$", "type") != "request.cancelled" {
		t.Fatalf("generic body: %s", raw)
	}
	field[string](t, v, "$", "time")
	field[string](t, v, "$", "request_id")
	w := field[map[string]any](t, v, "$", "waiting")
	miss := field[[]any](t, w, "waiting", "missing")
	field[string](t, miss[0], "missing[0]", "role")
	field[float64](t, miss[0], "missing[0]", "threshold")
	field[[]any](t, miss[0], "missing[0]", "waiting")
	if strings.ContainsAny(raw, "\u202e\x1b") {
		t.Fatalf("raw control or bidi character in %s", raw)
	}
	var m notify.Message
	if err := json.Unmarshal([]byte(raw), &m); err != nil || m.Detail["reason"] != hostile().Detail["reason"] {
		t.Fatalf("the JSON does not decode to the same strings: %v", err)
	}
}
