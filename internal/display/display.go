// Package display makes text that came from the network or a file safe to
// show on a terminal (or, later, in a browser console's text nodes): what a
// party sees must be what it signs.
//
// A subject name, a reason, a key name or an error carrying a server's text
// may hold terminal escape codes (ESC [1A moves the cursor up, CR returns to
// the start of the line, ESC [2K erases it), bidirectional overrides that
// reorder what follows, or invisible characters. Printed raw, they make a
// terminal show something other than the bytes. This package turns every
// such character into a visible escape, with the classes of
// [attest.RuneClass] (the rules the statement parser enforces), so nothing a
// parser would refuse ever reaches a terminal raw:
//
//   - [String] escapes one field's value for text output: every refused
//     character (tab and newline included) and the backslash, so the
//     escaped form is unambiguous.
//   - [NewWriter] wraps a whole output stream as a last line of defence: it
//     keeps tab and newline (the layout of the output) and escapes the rest
//     as JSON-compatible \uXXXX escapes, so output written by encoding/json
//     (which leaves C1 controls, U+2028 aside, and bidirectional overrides
//     raw) stays valid JSON with the same meaning.
package display

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/quorate-dev/quorate/attest"
)

// String returns s with every character the identifier rule refuses, and the
// backslash, replaced by a visible escape: \x1b for an ASCII control, \u202e
// or \U000e0041 for others, \xff for a byte that is not UTF-8, \\ for a
// backslash. A printable s comes back unchanged.
func String(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x80 && attest.RuneClass(r, false) != "":
			fmt.Fprintf(&b, `\x%02x`, r)
		case r > 0xffff && attest.RuneClass(r, false) != "":
			fmt.Fprintf(&b, `\U%08x`, r)
		case r >= 0x80 && attest.RuneClass(r, false) != "":
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// clean reports whether String(s) is s.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// Strings applies [String] to each element.
func Strings(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = String(s)
	}
	return out
}

// Writer escapes what passes through it; see [NewWriter].
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	carry []byte // the start of a UTF-8 sequence split across writes
}

// NewWriter returns a writer that writes to w everything written to it, with
// every character the free-text rule refuses except tab and newline (so also
// CR, ESC, C1 controls, bidirectional overrides, invisible characters)
// replaced by a \uXXXX escape (a surrogate pair above U+FFFF), and every
// byte that is not UTF-8 by \xNN (encoding/json never writes one). Output
// with nothing to escape passes through unchanged and without copying.
//
// A Writer is safe for concurrent use (a logger writes from many
// goroutines); each Write reaches w in one call.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write implements io.Writer. It reports len(p) when everything was written,
// even if the escaped output was longer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data := p
	if len(w.carry) > 0 {
		data = append(w.carry, p...)
		w.carry = nil
	}
	out, ok := escape(data)
	if ok {
		if _, err := w.w.Write(data); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	// Keep an incomplete but possibly valid UTF-8 sequence at the end for
	// the next write.
	if n := incompleteTail(data); n > 0 {
		w.carry = append([]byte(nil), data[len(data)-n:]...)
		out, _ = escape(data[:len(data)-n])
	}
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a carried incomplete sequence as \xNN escapes; call it when
// no more output will follow.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.carry) == 0 {
		return nil
	}
	out, _ := escape(w.carry)
	w.carry = nil
	_, err := w.w.Write(out)
	return err
}

// incompleteTail returns the length of a trailing prefix of a multi-byte
// UTF-8 sequence (1 to 3 bytes), or 0.
func incompleteTail(b []byte) int {
	for n := 1; n <= 3 && n <= len(b); n++ {
		c := b[len(b)-n]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-n:]) {
				return n
			}
			return 0
		}
	}
	return 0
}

// escape returns b with refused characters escaped, or ok true if there is
// nothing to escape (then out is nil).
func escape(b []byte) (out []byte, ok bool) {
	i := 0
	for i < len(b) {
		c := b[i]
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if !(r == utf8.RuneError && size == 1) && r >= 0x80 && attest.RuneClass(r, true) == "" {
			i += size
			continue
		}
		break
	}
	if i == len(b) {
		return nil, true
	}
	out = append(make([]byte, 0, len(b)+16), b[:i]...)
	for i < len(b) {
		c := b[i]
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = fmt.Appendf(out, `\x%02x`, c)
		case attest.RuneClass(r, true) == "":
			out = append(out, b[i:i+size]...)
		case r > 0xffff:
			r1, r2 := utf16Pair(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
	}
	return out, false
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}
