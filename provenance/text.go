package provenance

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// checkIdentifier and checkFreeText apply the text rules of the strings a
// party is shown (see attest's text rules): no invalid UTF-8, no control,
// bidirectional, zero-width or other invisible format characters; an
// identifier also has no space but U+0020, and none at either end.
//
// TODO(issue 20): use attest.CheckIdentifier and attest.CheckFreeText once
// attest/text.go is committed; these are a local stand-in with the same
// contract.
func checkIdentifier(field, s string) error { return checkText(field, s, false) }

func checkFreeText(field, s string) error { return checkText(field, s, true) }

func checkText(field, s string, free bool) error {
	for i, r := range s {
		bad := ""
		switch {
		case r == utf8.RuneError:
			bad = "invalid UTF-8 or a replacement character"
		case free && (r == '\n' || r == '\t'):
		case r < 0x20 || r == 0x7f || 0x80 <= r && r <= 0x9f:
			bad = "a control character"
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Co, r), unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r),
			unicode.Is(unicode.Variation_Selector, r), r == 0x2028, r == 0x2029:
			bad = "an invisible or format character"
		case !free && r == ' ' && (i == 0 || i == len(s)-1):
			bad = "a leading or trailing space"
		case !free && r != ' ' && unicode.IsSpace(r):
			bad = "a space other than U+0020"
		case !unicode.IsGraphic(r) && !unicode.IsSpace(r):
			bad = "a non-graphic code point"
		}
		if bad != "" {
			return fmt.Errorf("%w: %s: U+%04X at offset %d is %s", ErrMalformed, field, r, i, bad)
		}
	}
	return nil
}
