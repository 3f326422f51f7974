package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// # Text rules
//
// What a party approves is shown to it as text: subject names, the gate,
// the request ID, digest algorithm names, URIs. A string that renders as
// something other than what it is (a name carrying terminal escape codes
// that move the cursor back over an earlier line, a right-to-left override
// that reverses "gpj.exe" into "exe.jpg", a zero-width character that makes
// two names look equal) lets a party approve an artifact it never saw. So
// the statement's identifying strings must be printable text, checked by
// [CheckIdentifier], and its free-text strings (inside an embedded
// provenance) by [CheckFreeText]. The rules are policy-independent: every
// verifier and the coordinator apply them through [ParseStatement], and
// [NewStatement] applies them before anything is signed.
//
// [CheckIdentifier] refuses:
//   - invalid UTF-8, and U+FFFD (the replacement character a decoder puts
//     in place of invalid UTF-8);
//   - C0 controls (U+0000–U+001F, tab and newline included), DEL (U+007F)
//     and C1 controls (U+0080–U+009F);
//   - format characters (general category Cf): the bidirectional embeddings,
//     overrides and isolates (U+202A–U+202E, U+2066–U+2069), the marks LRM,
//     RLM and ALM, zero-width space, non-joiner and joiner (U+200B–U+200D),
//     the word joiner and invisible operators (U+2060–U+2064), the byte-order
//     mark (U+FEFF), soft hyphen, tag characters and the others;
//   - the line and paragraph separators (U+2028, U+2029);
//   - other default-ignorable code points (variation selectors, the
//     combining grapheme joiner, Hangul fillers);
//   - private-use, surrogate, noncharacter and unassigned code points (as of
//     the Unicode version of the Go release that built quorate);
//   - every space but U+0020, and U+0020 at the start or end.
//
// [CheckFreeText] refuses the same, except that it allows tab, newline and
// any space character anywhere.
//
// Subject names that are equal after Unicode NFKC normalization (which
// implies equal after NFC) are refused: two names a reader cannot tell
// apart must not name two artifacts. Names need not be normalized
// themselves (a file name written in NFD on macOS is fine). Letters that
// merely look alike across scripts (Latin "a" and Cyrillic "а") are not
// refused: they are printable, the CLI shows them as they are, and the
// digest, shown beside the name, is what binds.

// Errors callers may test for with errors.Is.
var (
	// ErrUnprintable: a string holds a character the text rules refuse.
	ErrUnprintable = errors.New("not printable text")
	// ErrDuplicateName: two subjects have names equal after normalization.
	ErrDuplicateName = errors.New("duplicate subject name")
)

// TextError says which field holds which refused character, and where.
type TextError struct {
	Field  string // as in "subject[1].name"
	Rune   rune   // the refused code point; utf8.RuneError for invalid UTF-8
	Byte   byte   // the first byte of invalid UTF-8
	Offset int    // byte offset within the field's value
	Class  string // what the character is, as in "bidirectional override"
}

func (e *TextError) Error() string {
	if e.Class == classInvalidUTF8 {
		return fmt.Sprintf("%s: byte 0x%02X at offset %d is %s", e.Field, e.Byte, e.Offset, e.Class)
	}
	return fmt.Sprintf("%s: U+%04X (%s) at offset %d is %s", e.Field, e.Rune, e.Class, e.Offset, ErrUnprintable)
}

// Is makes errors.Is(err, ErrUnprintable) true.
func (e *TextError) Is(target error) bool { return target == ErrUnprintable }

const classInvalidUTF8 = "invalid UTF-8"

// CheckIdentifier applies the identifier rule to s, the value of field.
func CheckIdentifier(field, s string) error { return checkText(field, s, false) }

// CheckFreeText applies the free-text rule (the identifier rule, but tab,
// newline and spaces are allowed) to s, the value of field.
func CheckFreeText(field, s string) error { return checkText(field, s, true) }

func checkText(field, s string, free bool) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f { // printable ASCII: the common case
			if c == ' ' && !free && (i == 0 || i == len(s)-1) {
				return &TextError{Field: field, Rune: ' ', Offset: i, Class: "leading or trailing space"}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return &TextError{Field: field, Rune: utf8.RuneError, Byte: c, Offset: i, Class: classInvalidUTF8}
		}
		if free && (r == '\n' || r == '\t') {
			i += size
			continue
		}
		if class := RuneClass(r, free); class != "" {
			return &TextError{Field: field, Rune: r, Offset: i, Class: class}
		}
		i += size
	}
	return nil
}

// RuneClass returns the class of r that the text rules refuse, as in "C0
// control" or "bidirectional override", or "" if r is allowed. With free
// set, it allows every space character (tab and newline are C0 controls:
// the caller allows them).
func RuneClass(r rune, free bool) string {
	switch {
	case r < 0x20:
		return "C0 control"
	case r == 0x7f:
		return "DEL control"
	case r < 0x7f:
		return ""
	case r <= 0x9f:
		return "C1 control"
	case 0x202a <= r && r <= 0x202e:
		return "bidirectional embedding or override"
	case 0x2066 <= r && r <= 0x2069:
		return "bidirectional isolate"
	case r == 0x200e || r == 0x200f || r == 0x061c:
		return "bidirectional mark"
	case 0x200b <= r && r <= 0x200d, r == 0x2060:
		return "zero-width character"
	case r == 0xfeff:
		return "byte-order mark"
	case r == 0x2028:
		return "line separator"
	case r == 0x2029:
		return "paragraph separator"
	case r == utf8.RuneError:
		return "replacement character"
	case 0xfdd0 <= r && r <= 0xfdef, r&0xfffe == 0xfffe:
		return "noncharacter"
	case 0xd800 <= r && r <= 0xdfff:
		return "surrogate"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.Is(unicode.Co, r):
		return "private-use character"
	case unicode.Is(unicode.Variation_Selector, r), unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return "invisible default-ignorable character"
	case unicode.IsSpace(r) || unicode.Is(unicode.Zs, r):
		if free {
			return ""
		}
		return "space other than U+0020"
	case !unicode.IsGraphic(r):
		return "unassigned or non-graphic code point"
	}
	return ""
}

// checkUTF8 refuses data that is not valid UTF-8, naming the first bad byte.
func checkUTF8(field string, data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return &TextError{Field: field, Rune: utf8.RuneError, Byte: data[i], Offset: i, Class: classInvalidUTF8}
		}
		i += size
	}
	return nil
}

// CheckSubjectNames refuses two non-empty subject names that are equal after
// Unicode NFKC normalization (and so after NFC, or exactly).
func CheckSubjectNames(subjects []Subject) error {
	seen := make(map[string]int, len(subjects))
	for i, s := range subjects {
		if s.Name == "" {
			continue
		}
		key := norm.NFKC.String(s.Name)
		if j, ok := seen[key]; ok {
			how := "exactly"
			switch {
			case subjects[j].Name == s.Name:
			case norm.NFC.String(subjects[j].Name) == norm.NFC.String(s.Name):
				how = "after Unicode NFC normalization"
			default:
				how = "after Unicode NFKC normalization"
			}
			return fmt.Errorf("%w: subject[%d].name %q equals subject[%d].name %q %s", ErrDuplicateName, i, s.Name, j, subjects[j].Name, how)
		}
		seen[key] = i
	}
	return nil
}

// checkDigestText applies the identifier rule to a digest map's algorithm
// names and values.
func checkDigestText(field string, d map[string]string) error {
	for alg, v := range d {
		if CheckIdentifier("", alg) != nil || CheckIdentifier("", v) != nil {
			// Report the first bad entry in key order, so the error is
			// always the same.
			for _, alg := range slices.Sorted(maps.Keys(d)) {
				if err := CheckIdentifier(field+" algorithm name", alg); err != nil {
					return err
				}
				if err := CheckIdentifier(field+"."+alg, d[alg]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkJSONText applies the free-text rule to every key and string of the
// JSON value raw (an embedded document, such as a provenance predicate),
// naming the path of the first bad one.
func checkJSONText(field string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	if err := checkUTF8(field, raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return checkValueText(field, v)
}

func checkValueText(field string, v any) error {
	switch v := v.(type) {
	case string:
		return CheckFreeText(field, v)
	case []any:
		for i, e := range v {
			if err := checkValueText(fmt.Sprintf("%s[%d]", field, i), e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			name := field + "." + strconv.Quote(k)
			if err := CheckFreeText(name+" (key)", k); err != nil {
				return err
			}
			if err := checkValueText(name, v[k]); err != nil {
				return err
			}
		}
	}
	return nil
}
