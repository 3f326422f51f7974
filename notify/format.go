package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/quorate-dev/quorate/internal/display"
)

// Slack and Teams limits the renderers keep to (Slack Block Kit reference:
// header text 150 characters, section text 3000, a field 2000, 10 fields per
// section, 50 blocks per message).
const (
	slackHeaderMax  = 150
	slackTextMax    = 3000
	slackFieldMax   = 2000
	slackMaxFields  = 10
	maxWaitingLines = 20
	maxPeople       = 20
)

// Render returns the body of m in format f.
func Render(f Format, m *Message) ([]byte, error) {
	switch f {
	case FormatJSON:
		return renderJSON(m)
	case FormatSlack:
		return marshal(slackMessage(m))
	case FormatTeams:
		return marshal(teamsMessage(m))
	}
	return nil, fmt.Errorf("notify: unknown format %q", f)
}

// renderJSON writes m as JSON with every character a display could be
// spoofed by (C1 controls, bidirectional overrides, invisible characters)
// escaped as \uXXXX: the same JSON value, nothing raw.
func renderJSON(m *Message) ([]byte, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("notify: encoding message %s: %w", m.ID, err)
	}
	var b bytes.Buffer
	w := display.NewWriter(&b)
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("notify: encoding body: %w", err)
	}
	return b, nil
}

// --- Slack -----------------------------------------------------------------

// SlackEscape makes s safe in Slack mrkdwn or plain text: control,
// bidirectional and invisible characters become visible escapes
// (internal/display), then &, < and > become &amp;, &lt; and &gt; (Slack's
// required escaping; without it "<!channel>" or "<https://…|text>" would be
// a mention or a disguised link).
func SlackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(display.String(s))
}

// slackCode shows a value verbatim in an inline code span, where mrkdwn
// applies no formatting; a value holding a backtick is shown escaped
// without one.
func slackCode(s string) string {
	e := SlackEscape(s)
	if strings.Contains(e, "`") {
		return e
	}
	return "`" + e + "`"
}

type slackText struct {
	Type  string `json:"type"` // plain_text or mrkdwn
	Text  string `json:"text"`
	Emoji *bool  `json:"emoji,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"` // header, section, context, divider
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackBody struct {
	// Text is the notification fallback (and the whole message for
	// clients without blocks).
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

func slackMessage(m *Message) slackBody {
	no := false
	title := SlackEscape(m.title())
	body := slackBody{Text: truncate(title, slackTextMax)}
	body.Blocks = append(body.Blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(title, slackHeaderMax), Emoji: &no}})
	var fields []slackText
	for _, f := range m.facts() {
		if len(fields) == slackMaxFields {
			break
		}
		fields = append(fields, slackText{Type: "mrkdwn", Text: truncate("*"+f[0]+"*\n"+slackCode(f[1]), slackFieldMax)})
	}
	if len(fields) > 0 {
		body.Blocks = append(body.Blocks, slackBlock{Type: "section", Fields: fields})
	}
	if lines := m.waitingLines(); len(lines) > 0 {
		var b strings.Builder
		b.WriteString("*Waiting on*")
		for i, l := range lines {
			if i == maxWaitingLines {
				fmt.Fprintf(&b, "\n… %d more roles", len(lines)-i)
				break
			}
			fmt.Fprintf(&b, "\n• %s: %d more of %d", slackCode(l.role), l.need, l.threshold)
			if len(l.people) > 0 {
				b.WriteString(" — ")
				b.WriteString(joinPeople(l.people, slackCode))
			}
		}
		body.Blocks = append(body.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(b.String(), slackTextMax)}})
	}
	body.Blocks = append(body.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: "quorate · " + SlackEscape(string(m.Type)) + " · webhook-id " + slackCode(m.ID)}}})
	return body
}

// --- Microsoft Teams ---------------------------------------------------------

// TeamsEscape makes s safe in an Adaptive Card TextBlock or FactSet value,
// which Teams renders as Markdown: control, bidirectional and invisible
// characters become visible escapes (internal/display), then every ASCII
// punctuation character Markdown gives a meaning to is backslash-escaped
// (CommonMark), so a value cannot become a link, emphasis or a list.
func TeamsEscape(s string) string {
	s = display.String(s)
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_{}[]()#+-.!~>|<&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

type teamsBody struct {
	Type        string            `json:"type"` // "message"
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"` // application/vnd.microsoft.card.adaptive
	ContentURL  *string   `json:"contentUrl"`  // null
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string      `json:"$schema"`
	Type    string      `json:"type"` // AdaptiveCard
	Version string      `json:"version"`
	Body    []teamsElem `json:"body"`
}

type teamsElem struct {
	Type   string      `json:"type"` // TextBlock or FactSet
	Text   string      `json:"text,omitempty"`
	Weight string      `json:"weight,omitempty"`
	Size   string      `json:"size,omitempty"`
	Wrap   bool        `json:"wrap,omitempty"`
	Facts  []teamsFact `json:"facts,omitempty"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// TeamsCardVersion is the Adaptive Card schema version used (Teams
// supports 1.5; 1.4 suffices and is accepted by older clients).
const TeamsCardVersion = "1.4"

func teamsMessage(m *Message) teamsBody {
	card := teamsCard{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: TeamsCardVersion}
	card.Body = append(card.Body, teamsElem{Type: "TextBlock", Text: TeamsEscape(m.title()), Weight: "Bolder", Size: "Medium", Wrap: true})
	var facts []teamsFact
	for _, f := range m.facts() {
		facts = append(facts, teamsFact{Title: f[0], Value: TeamsEscape(f[1])})
	}
	if len(facts) > 0 {
		card.Body = append(card.Body, teamsElem{Type: "FactSet", Facts: facts})
	}
	if lines := m.waitingLines(); len(lines) > 0 {
		card.Body = append(card.Body, teamsElem{Type: "TextBlock", Text: "Waiting on", Weight: "Bolder", Wrap: true})
		for i, l := range lines {
			if i == maxWaitingLines {
				card.Body = append(card.Body, teamsElem{Type: "TextBlock", Text: fmt.Sprintf("… %d more roles", len(lines)-i), Wrap: true})
				break
			}
			text := TeamsEscape(l.role) + ": " + strconv.Itoa(l.need) + " more of " + strconv.Itoa(l.threshold)
			if len(l.people) > 0 {
				text += " — " + joinPeople(l.people, TeamsEscape)
			}
			card.Body = append(card.Body, teamsElem{Type: "TextBlock", Text: text, Wrap: true})
		}
	}
	card.Body = append(card.Body, teamsElem{Type: "TextBlock", Text: "quorate · " + TeamsEscape(string(m.Type)) + " · webhook\\-id " + TeamsEscape(m.ID), Size: "Small", Wrap: true})
	return teamsBody{Type: "message", Attachments: []teamsAttachment{{ContentType: "application/vnd.microsoft.card.adaptive", Content: card}}}
}

func joinPeople(people []string, esc func(string) string) string {
	var parts []string
	for i, p := range people {
		if i == maxPeople {
			parts = append(parts, fmt.Sprintf("… %d more", len(people)-i))
			break
		}
		parts = append(parts, esc(p))
	}
	return strings.Join(parts, ", ")
}

// truncate cuts s to at most n characters, ending with "…" when cut. It
// never cuts inside an escape such as &amp; badly enough to matter: a cut
// entity shows as text.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
