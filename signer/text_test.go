package signer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/signer/client"
)

// rawStatement encodes a statement without attest.NewStatement's checks, as
// a hostile client would.
func (w *world) rawStatement(gate string, subjects []attest.Subject) []byte {
	w.t.Helper()
	var p attest.Predicate
	must(w.t, json.Unmarshal(w.statementPredicate(gate), &p))
	pred, err := json.Marshal(p)
	must(w.t, err)
	st, err := json.Marshal(attest.Statement{Type: attest.StatementType, Subject: subjects, PredicateType: attest.PredicateType, Predicate: pred})
	must(w.t, err)
	return st
}

func (w *world) statementPredicate(gate string) json.RawMessage {
	var st attest.Statement
	must(w.t, json.Unmarshal(w.statement(gate, nil), &st))
	return st.Predicate
}

// TestOpenRefusesWhatAPartyCannotSee: POST /v1/requests with a subject a
// terminal would not show as it is answers 400 naming the field and the
// code point, and nothing is stored.
func TestOpenRefusesWhatAPartyCannotSee(t *testing.T) {
	w := newWorld(t)
	evil := attest.Subject{Name: "evil-backdoor.bin", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}}
	named := func(name string) attest.Subject {
		return attest.Subject{Name: name, Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}
	}
	for _, tc := range []struct {
		name     string
		subjects []attest.Subject
		want     string
	}{
		{"ansi-escape", []attest.Subject{evil, named("\x1b[1A\r\x1b[2Kapp.tgz")}, `name: U+001B (C0 control) at offset 0`},
		{"carriage-return", []attest.Subject{evil, named("x\rapp.tgz")}, `name: U+000D (C0 control)`},
		{"c1-csi", []attest.Subject{evil, named("\u009b1Aapp.tgz")}, `name: U+009B (C1 control)`},
		{"bidi-override", []attest.Subject{named("evil\u202egzt.ppa")}, `name: U+202E (bidirectional embedding or override)`},
		{"zero-width-joiner", []attest.Subject{named("app\u200d.tgz")}, `name: U+200D (zero-width character)`},
		{"bom", []attest.Subject{named("\ufeffapp.tgz")}, `name: U+FEFF (byte-order mark)`},
		{"line-separator", []attest.Subject{named("app\u2028.tgz")}, `name: U+2028 (line separator)`},
		{"nfc-duplicate", []attest.Subject{{Name: "caf\u00e9", Digest: evil.Digest}, named("cafe\u0301")}, `after Unicode NFC normalization`},
		{"nfkc-duplicate", []attest.Subject{{Name: "app.tgz", Digest: evil.Digest}, named("\uff41pp.tgz")}, `after Unicode NFKC normalization`},
		{"empty-subjects", []attest.Subject{}, `no subjects`},
		{"bad-digest-alg-name", []attest.Subject{{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32), "x\u202e": "1"}}}, `digest algorithm name: U+202E`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := w.rawStatement("production", tc.subjects)
			_, err := w.client.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, w.dev, attest.PayloadType, st)})
			apiErr(t, err, http.StatusBadRequest, "invalid")
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
	t.Run("bad-gate", func(t *testing.T) {
		st := []byte(strings.Replace(string(w.statement("production", nil)), `"gate":"production"`, `"gate":"production\u2066"`, 1))
		_, err := w.client.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, w.dev, attest.PayloadType, st)})
		apiErr(t, err, http.StatusBadRequest, "invalid")
		if !strings.Contains(err.Error(), "predicate.gate: U+2066 (bidirectional isolate)") {
			t.Fatalf("error %q does not name the gate and the code point", err)
		}
	})
	rs, err := w.client.List(context.Background(), "", 100)
	must(t, err)
	if len(rs) != 0 {
		t.Fatalf("%d requests stored, want none", len(rs))
	}
}
