package attest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckIdentifier(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		free      bool   // the free-text rule instead
		wantClass string // "" means accepted
		wantRune  rune
	}{
		{name: "plain", in: "app-1.2.tar.gz"},
		{name: "accented", in: "café.tgz"},
		{name: "nfd-accented", in: "cafe\u0301.tgz"},
		{name: "cjk", in: "发布.tgz"},
		{name: "inner-space", in: "my app.tgz"},
		{name: "ansi-escape", in: "\x1b[1A\r\x1b[2Kapp.tgz", wantClass: "C0 control", wantRune: 0x1b},
		{name: "carriage-return", in: "evil\rapp.tgz", wantClass: "C0 control", wantRune: '\r'},
		{name: "newline", in: "a\nb", wantClass: "C0 control", wantRune: '\n'},
		{name: "tab", in: "a\tb", wantClass: "C0 control", wantRune: '\t'},
		{name: "nul", in: "a\x00b", wantClass: "C0 control", wantRune: 0},
		{name: "del", in: "a\x7fb", wantClass: "DEL control", wantRune: 0x7f},
		{name: "c1-csi", in: "a\u009b2Kb", wantClass: "C1 control", wantRune: 0x9b},
		{name: "bidi-override", in: "evil\u202egpj.exe", wantClass: "bidirectional embedding or override", wantRune: 0x202e},
		{name: "bidi-isolate", in: "a\u2066b", wantClass: "bidirectional isolate", wantRune: 0x2066},
		{name: "rlm", in: "a\u200fb", wantClass: "bidirectional mark", wantRune: 0x200f},
		{name: "alm", in: "a\u061cb", wantClass: "bidirectional mark", wantRune: 0x61c},
		{name: "zero-width-space", in: "app\u200b.tgz", wantClass: "zero-width character", wantRune: 0x200b},
		{name: "zero-width-joiner", in: "app\u200d.tgz", wantClass: "zero-width character", wantRune: 0x200d},
		{name: "word-joiner", in: "app\u2060.tgz", wantClass: "zero-width character", wantRune: 0x2060},
		{name: "invisible-times", in: "app\u2062.tgz", wantClass: "invisible format character", wantRune: 0x2062},
		{name: "bom", in: "\ufeffapp.tgz", wantClass: "byte-order mark", wantRune: 0xfeff},
		{name: "soft-hyphen", in: "app\u00ad.tgz", wantClass: "invisible format character", wantRune: 0xad},
		{name: "tag-character", in: "app\U000e0041.tgz", wantClass: "invisible format character", wantRune: 0xe0041},
		{name: "line-separator", in: "a\u2028b", wantClass: "line separator", wantRune: 0x2028},
		{name: "paragraph-separator", in: "a\u2029b", wantClass: "paragraph separator", wantRune: 0x2029},
		{name: "variation-selector", in: "a\ufe0fb", wantClass: "invisible default-ignorable character", wantRune: 0xfe0f},
		{name: "combining-grapheme-joiner", in: "a\u034fb", wantClass: "invisible default-ignorable character", wantRune: 0x34f},
		{name: "hangul-filler", in: "a\u3164b", wantClass: "invisible default-ignorable character", wantRune: 0x3164},
		{name: "private-use", in: "a\ue000b", wantClass: "private-use character", wantRune: 0xe000},
		{name: "noncharacter", in: "a\ufdd0b", wantClass: "noncharacter", wantRune: 0xfdd0},
		{name: "noncharacter-fffe", in: "a\U0001fffeb", wantClass: "noncharacter", wantRune: 0x1fffe},
		{name: "unassigned", in: "a\u0378b", wantClass: "unassigned or non-graphic code point", wantRune: 0x378},
		{name: "replacement-character", in: "a\ufffdb", wantClass: "replacement character", wantRune: 0xfffd},
		{name: "nbsp", in: "app\u00a0.tgz", wantClass: "space other than U+0020", wantRune: 0xa0},
		{name: "ideographic-space", in: "a\u3000b", wantClass: "space other than U+0020", wantRune: 0x3000},
		{name: "leading-space", in: " app.tgz", wantClass: "leading or trailing space", wantRune: ' '},
		{name: "trailing-space", in: "app.tgz ", wantClass: "leading or trailing space", wantRune: ' '},
		{name: "invalid-utf8", in: "app\xff.tgz", wantClass: "invalid UTF-8", wantRune: 0xfffd},
		{name: "encoded-surrogate", in: "a\xed\xa0\x80b", wantClass: "invalid UTF-8", wantRune: 0xfffd},

		{name: "free-text-newline-tab", in: "line one\n\tline two ", free: true},
		{name: "free-text-nbsp", in: "a\u00a0b", free: true},
		{name: "free-text-carriage-return", in: "a\r\nb", free: true, wantClass: "C0 control", wantRune: '\r'},
		{name: "free-text-ansi-escape", in: "ok\n\x1b[2K", free: true, wantClass: "C0 control", wantRune: 0x1b},
		{name: "free-text-bidi-override", in: "a\u202eb", free: true, wantClass: "bidirectional embedding or override", wantRune: 0x202e},
		{name: "free-text-line-separator", in: "a\u2028b", free: true, wantClass: "line separator", wantRune: 0x2028},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := CheckIdentifier
			if tc.free {
				check = CheckFreeText
			}
			err := check("subject[1].name", tc.in)
			if tc.wantClass == "" {
				if err != nil {
					t.Fatalf("refused %q: %v", tc.in, err)
				}
				return
			}
			var te *TextError
			if !errors.As(err, &te) || !errors.Is(err, ErrUnprintable) {
				t.Fatalf("%q: got %v, want a *TextError matching ErrUnprintable", tc.in, err)
			}
			if te.Class != tc.wantClass || te.Rune != tc.wantRune || te.Field != "subject[1].name" {
				t.Fatalf("%q: got %+v, want class %q rune %U", tc.in, te, tc.wantClass, tc.wantRune)
			}
			if msg := err.Error(); !strings.Contains(msg, "subject[1].name") || !strings.Contains(msg, tc.wantClass) {
				t.Fatalf("error %q does not name the field and the class", msg)
			}
			if te.Class != "invalid UTF-8" && !strings.Contains(err.Error(), "U+") {
				t.Fatalf("error %q does not name the code point", err)
			}
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return RuneClass(r, false) != "" }) {
				t.Fatalf("error %q itself carries a refused character", err)
			}
		})
	}
}

// evilStatement is a valid two-subject statement with the replacements
// (old, new, old, new...) applied to its JSON.
func evilStatement(t *testing.T, edits ...string) []byte {
	t.Helper()
	st, err := NewStatement([]Subject{
		{Name: "evil-backdoor.bin", Digest: map[string]string{"sha256": testHex64}},
		{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}},
	}, Predicate{
		Gate: "production", Policy: PolicyRef{Version: 3, Digest: map[string]string{"sha256": testHex64}},
		RequestID: "req-1", Created: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Expires: time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(string(st), edits[i]) {
			t.Fatalf("%s does not contain %s", st, edits[i])
		}
		st = []byte(strings.Replace(string(st), edits[i], edits[i+1], 1))
	}
	return st
}

// TestParseStatementRefusesUnprintable runs each class through
// ParseStatement, on the fast decoder (raw UTF-8 in a plain string) and on
// the general path (a JSON escape), which must agree.
func TestParseStatementRefusesUnprintable(t *testing.T) {
	const prov = `,"provenance":{"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"x","externalParameters":{"note":"line one\nline two\tok"}}}}`
	for _, tc := range []struct {
		name     string
		edits    []string // old, new pairs
		wantFast bool     // the fast decoder (plain ASCII strings only) takes it
		want     string   // in the error
		wantIs   error
	}{
		{"ansi-escape", []string{`"name":"app.tgz"`, `"name":"\u001b[1A\r\u001b[2Kapp.tgz"`}, false, `name: U+001B (C0 control) at offset 0`, ErrUnprintable},
		{"carriage-return", []string{`"name":"app.tgz"`, `"name":"x\rapp.tgz"`}, false, `name: U+000D (C0 control) at offset 1`, ErrUnprintable},
		{"c1-csi-raw", []string{`"name":"app.tgz"`, "\"name\":\"\u009b2Kapp.tgz\""}, false, `name: U+009B (C1 control)`, ErrUnprintable},
		{"bidi-override-raw", []string{`"name":"app.tgz"`, "\"name\":\"evil\u202egzt.ppa\""}, false, `name: U+202E (bidirectional embedding or override) at offset 4`, ErrUnprintable},
		{"bidi-override-escaped", []string{`"name":"app.tgz"`, `"name":"evil\u202Egzt.ppa"`}, false, `name: U+202E (bidirectional embedding or override)`, ErrUnprintable},
		{"zero-width-joiner", []string{`"name":"app.tgz"`, "\"name\":\"app\u200d.tgz\""}, false, `name: U+200D (zero-width character)`, ErrUnprintable},
		{"bom", []string{`"name":"app.tgz"`, "\"name\":\"\ufeffapp.tgz\""}, false, `name: U+FEFF (byte-order mark)`, ErrUnprintable},
		{"line-separator", []string{`"name":"app.tgz"`, "\"name\":\"app\u2028.tgz\""}, false, `name: U+2028 (line separator)`, ErrUnprintable},
		{"invalid-utf8", []string{`"name":"app.tgz"`, "\"name\":\"app\xff.tgz\""}, false, `statement: byte 0xFF at offset`, ErrUnprintable},
		{"nfc-duplicate", []string{`"name":"evil-backdoor.bin"`, "\"name\":\"caf\u00e9\"", `"name":"app.tgz"`, "\"name\":\"cafe\u0301\""}, false, `after Unicode NFC normalization`, ErrDuplicateName},
		{"nfkc-duplicate", []string{`"name":"evil-backdoor.bin"`, `"name":"app.tgz"`, `"name":"app.tgz"`, "\"name\":\"\uff41pp.tgz\""}, false, `after Unicode NFKC normalization`, ErrDuplicateName}, // fullwidth a
		{"exact-duplicate", []string{`"name":"evil-backdoor.bin"`, `"name":"app.tgz"`}, true, `subject[1].name "app.tgz" equals subject[0].name "app.tgz" exactly`, ErrDuplicateName},
		{"empty-subjects", []string{`"subject":[`, `"subject":[],"x":[`}, true, `statement has no subjects`, ErrMalformed},
		{"bad-digest-alg-name", []string{`"digest":{"sha256"`, "\"digest\":{\"sha1\u202e\":\"00\",\"sha256\""}, false, `digest algorithm name: U+202E`, ErrUnprintable},
		{"bad-digest-value", []string{`"digest":{"sha256"`, "\"digest\":{\"md5\":\"0\u200b0\",\"sha256\""}, false, `digest.md5: U+200B`, ErrUnprintable},
		{"bad-gate", []string{`"gate":"production"`, "\"gate\":\"prod\u200buction\""}, false, `predicate.gate: U+200B (zero-width character) at offset 4`, ErrUnprintable},
		{"del-raw", []string{`"gate":"production"`, "\"gate\":\"prod\x7f\""}, true, `predicate.gate: U+007F (DEL control) at offset 4`, ErrUnprintable},
		{"bad-gate-escape", []string{`"gate":"production"`, `"gate":"\u001b[2Kproduction"`}, false, `predicate.gate: U+001B`, ErrUnprintable},
		{"bad-request-id", []string{`"requestId":"req-1"`, "\"requestId\":\"req-1\u2066\""}, false, `predicate.requestId: U+2066 (bidirectional isolate)`, ErrUnprintable},
		{"bad-policy-digest-alg", []string{`"policy":{"version":3,"digest":{`, "\"policy\":{\"version\":3,\"digest\":{\"x\u00a0\":\"1\","}, false, `predicate.policy.digest algorithm name: U+00A0`, ErrUnprintable},
		{"bad-provenance-uri", []string{`"requestId":"req-1"`, `"requestId":"req-1","provenance":{"predicateType":"https://slsa.dev/provenance/v1","uri":"https://x/` + "\u202e" + `","digest":{"sha256":"` + testHex64 + `"}}`}, false, `predicate.provenance.uri: U+202E`, ErrUnprintable},
		{"provenance-free-text-ok", []string{`"requestId":"req-1"`, `"requestId":"req-1"` + prov}, true, "", nil},
		{"provenance-free-text-escape", []string{`"requestId":"req-1"`, `"requestId":"req-1"` + strings.Replace(prov, `ok"`, `\u001b[2J"`, 1)}, true, `predicate.provenance.predicate."buildDefinition"."externalParameters"."note": U+001B (C0 control)`, ErrUnprintable},
		{"provenance-free-text-key", []string{`"requestId":"req-1"`, `"requestId":"req-1"` + strings.Replace(prov, `"note"`, "\"no\u2028te\"", 1)}, true, `(key): U+2028`, ErrUnprintable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := evilStatement(t, tc.edits...)
			if _, _, fast := decodeStatement(in); fast != tc.wantFast {
				t.Fatalf("fast decoder took it: %v, want %v", fast, tc.wantFast)
			}
			_, _, err := ParseStatement(in, DefaultLimits)
			_, _, rerr := referenceParseStatement(in, DefaultLimits)
			compare(t, "ParseStatement", in, nil, err, nil, rerr)
			if tc.wantIs == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantIs) || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v containing %q", err, tc.wantIs, tc.want)
			}
		})
	}
}

// TestNewStatementRefusesUnprintable: a bad name is refused before anything
// is signed, and so is an empty subject list.
func TestNewStatementRefusesUnprintable(t *testing.T) {
	pred := Predicate{
		Gate: "production", Policy: PolicyRef{Version: 3, Digest: map[string]string{"sha256": testHex64}},
		RequestID: "req-1", Expires: time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC),
	}
	d := map[string]string{"sha256": testHex64}
	for _, tc := range []struct {
		name     string
		subjects []Subject
		gate     string
		want     error
	}{
		{"ansi-escape", []Subject{{Name: "\x1b[1A\r\x1b[2Kapp.tgz", Digest: d}}, "production", ErrUnprintable},
		{"bidi-override", []Subject{{Name: "a\u202eb", Digest: d}}, "production", ErrUnprintable},
		{"nfc-duplicate", []Subject{{Name: "caf\u00e9", Digest: d}, {Name: "cafe\u0301", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}}, "production", ErrDuplicateName},
		{"empty-subjects", nil, "production", nil},
		{"bad-gate", []Subject{{Name: "app.tgz", Digest: d}}, "prod\u200buction", ErrUnprintable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pred
			p.Gate = tc.gate
			_, err := NewStatement(tc.subjects, p)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
