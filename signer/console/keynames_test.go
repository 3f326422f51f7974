package console_test

import (
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/keys"
)

// The ci key's name and owner in every console test's policy: printable
// (the policy refuses controls and bidi characters) but full of HTML.
const (
	ciKeyName  = `ci <b>bot</b> "release"`
	ciKeyOwner = `release&ci@example.com`
	opKeyName  = "operator on-call"
)

// TestKeyNamesShownEscaped: the request page, the policy page and the inbox
// name the key beside its ID, escaped as text.
func TestKeyNamesShownEscaped(t *testing.T) {
	w := newWorld(t)
	r := w.open("app.tgz")
	b := w.browser()
	b.signInToken(readToken)
	name := `ci &lt;b&gt;bot&lt;/b&gt; &#34;release&#34;`
	owner := `release&amp;ci@example.com`
	short := keys.Short(w.ci.Public().ID())
	for _, tc := range []struct {
		page string
		want []string
	}{
		{"/ui/requests/" + r.ID, []string{
			name + `</span> &lt;` + owner + `&gt; <code title="` + w.ci.Public().ID() + `">` + short + `</code>`, // the ci role's key
			`by key <code title="` + w.ci.Public().ID() + `">` + name + ` (` + short + `)</code>`,                // opened by
			`signature.accepted: ci ` + name + ` (` + short + `)`,                                                // timeline
		}},
		{"/ui/policy", []string{`<td><code>` + w.ci.Public().ID() + `</code></td><td>` + name + `</td><td>` + owner + `</td>`}},
		{"/ui/inbox", []string{r.ID, `<td>operator on-call (` + keys.Short(w.op.pub.ID()) + `)</td>`}}, // waiting on the operator's passkey
	} {
		t.Run(tc.page, func(t *testing.T) {
			code, body := b.get(tc.page)
			if code != 200 {
				t.Fatalf("%s: HTTP %d", tc.page, code)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %s\n%s", s, body)
				}
			}
			if strings.Contains(body, "<b>bot") {
				t.Error("the key name's HTML reached the page raw")
			}
		})
	}
	// Signed in with the operator's passkey, the header names it.
	op := w.browser()
	if code, out := op.signInPasskey(w.op, w.origin); code != 200 {
		t.Fatalf("operator sign-in: %d %v", code, out)
	}
	if _, body := op.get("/ui/inbox"); !strings.Contains(body, `signed in with passkey operator on-call <code title="`+w.op.pub.ID()+`">`) {
		t.Errorf("the header does not name the passkey:\n%s", body)
	}
}
