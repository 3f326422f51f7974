package strictjson

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner validates JSON and finds duplicate object keys in one pass over
// the bytes, without building tokens. Keys are compared as encoding/json
// matches struct fields: after unescaping, without regard to case
// (including Unicode simple folding such as "ſ" for "s"), so that no key can
// hide behind another that a decoder would treat as the same field.
type scanner struct {
	data []byte
	pos  int
	// keys is a stack of the keys of the objects being scanned: ASCII keys
	// without escapes as they appear, any other key folded.
	keys [][]byte
	path []seg
}

// newScanner returns a scanner over data with room for the keys and path of
// typical documents, so that they are not reallocated as they grow.
func newScanner(data []byte) scanner {
	return scanner{data: data, keys: make([][]byte, 0, smallObject), path: make([]seg, 0, 8)}
}

// seg is one step of a JSON path: an object key (its raw bytes, turned into
// a string only when an error names the path) or an array index.
type seg struct {
	raw   []byte
	plain bool
	index int
}

// smallObject is the number of keys up to which an object's keys are
// compared pairwise; larger objects use a map.
const smallObject = 16

func (s *scanner) where() string {
	var b strings.Builder
	b.WriteString("$")
	for _, p := range s.path {
		if p.index >= 0 {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		} else {
			b.WriteString("." + keyString(p.raw, p.plain))
		}
	}
	return b.String()
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at %s (byte %d): %s", s.where(), s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("JSON nested deeper than %d at %s", MaxDepth, s.where())
	}
	s.ws()
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth, nil)
	case c == '[':
		return s.array(depth, nil)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	default:
		return s.errorf("unexpected character %q", c)
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.errorf("invalid literal (want %s)", lit)
	}
	s.pos += len(lit)
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

func (s *scanner) number() error {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return s.errorf("invalid number")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.errorf("invalid number")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.errorf("invalid number")
		}
	}
	return nil
}

// str scans a string at s.pos. It returns the raw bytes between the quotes
// and whether they are plain (ASCII, no escapes).
func (s *scanner) str() (raw []byte, plain bool, err error) {
	start := s.pos + 1
	plain = true
	for i := start; i < len(s.data); i++ {
		c := s.data[i]
		if plainByte[c] {
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return s.data[start:i], plain, nil
		case c == '\\':
			plain = false
			i++
			if i >= len(s.data) {
				s.pos = i
				return nil, false, s.errorf("unexpected end of input in string")
			}
			switch s.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.data) || !isHex4(s.data[i+1:i+5]) {
					s.pos = i
					return nil, false, s.errorf(`invalid \u escape in string`)
				}
				i += 4
			default:
				s.pos = i
				return nil, false, s.errorf("invalid escape %q in string", s.data[i])
			}
		case c < 0x20:
			s.pos = i
			return nil, false, s.errorf("control character %q in string", c)
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	s.pos = len(s.data)
	return nil, false, s.errorf("unexpected end of input in string")
}

// plainByte marks the bytes that stand for themselves in a string: not a
// quote, a backslash, a control character or part of a multi-byte UTF-8
// sequence.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// array scans an array at s.pos (which holds '['). With elem nil it scans
// each element with [scanner.value]; otherwise elem is called for each one
// and may consume it (see [scanner.member]).
func (s *scanner) array(depth int, elem func(i int) error) error {
	s.pos++ // '['
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		s.path = append(s.path, seg{index: i})
		var err error
		if elem == nil {
			err = s.value(depth + 1)
		} else {
			err = s.member(depth+1, func() error { return elem(i) })
		}
		if err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.ws()
		if s.pos >= len(s.data) {
			return s.errorf("unexpected end of input in array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf("unexpected character %q after array element", s.data[s.pos])
		}
	}
}

// member calls fn for the value at s.pos, which is at depth: fn may consume
// that value (with the methods of [Walker]) or leave it, in which case it is
// scanned here. A value cannot be half consumed: each method consumes one
// whole value or fails.
func (s *scanner) member(depth int, fn func() error) error {
	s.ws()
	start := s.pos
	if err := fn(); err != nil {
		return err
	}
	if s.pos == start {
		return s.value(depth)
	}
	return nil
}

// object scans an object at s.pos (which holds '{'). With field nil it scans
// each value with [scanner.value]; otherwise field is called with each key
// (as [scanner.str] returns it) once the key is known not to repeat an
// earlier one, and may consume the value (see [scanner.member]).
func (s *scanner) object(depth int, field func(raw []byte, plain bool) error) error {
	s.pos++ // '{'
	base := len(s.keys)
	defer func() { s.keys = s.keys[:base] }()
	var big map[string]bool
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.errorf("object key is not a string")
		}
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		key := raw
		if !plain {
			key = fold(unquote(raw))
		}
		n := len(s.keys) - base
		switch {
		case big != nil:
			f := string(foldASCII(key))
			if big[f] {
				return s.duplicate(raw, plain)
			}
			big[f] = true
		default:
			for _, k := range s.keys[base:] {
				if equalFoldASCII(k, key) {
					return s.duplicate(raw, plain)
				}
			}
			s.keys = append(s.keys, key)
			if n+1 > smallObject {
				big = make(map[string]bool, 2*smallObject)
				for _, k := range s.keys[base:] {
					big[string(foldASCII(k))] = true
				}
			}
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.errorf("missing ':' after object key")
		}
		s.pos++
		s.path = append(s.path, seg{raw: raw, plain: plain, index: -1})
		if field == nil {
			err = s.value(depth + 1)
		} else {
			err = s.member(depth+1, func() error { return field(raw, plain) })
		}
		if err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.ws()
		if s.pos >= len(s.data) {
			return s.errorf("unexpected end of input in object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("unexpected character %q after object member", s.data[s.pos])
		}
	}
}

func (s *scanner) duplicate(raw []byte, plain bool) error {
	return fmt.Errorf("duplicate key %q at %s", keyString(raw, plain), s.where())
}

func keyString(raw []byte, plain bool) string {
	if plain {
		return string(raw)
	}
	return string(unquote(raw))
}

// unquote decodes the escapes of a string body that [scanner.str] accepted,
// as encoding/json does: invalid UTF-8 and lone surrogates become U+FFFD.
func unquote(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, r) // RuneError for invalid bytes
			i += n
			continue
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i : i+4])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := unicode.ReplacementChar
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2 : i+6])
				}
				if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
					r = d
					i += 6
				} else {
					r = unicode.ReplacementChar
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, e)
		}
	}
	return out
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// fold maps a key to the form encoding/json compares field names in:
// ASCII upper case, other runes through unicode.ToUpper(unicode.ToLower(r)).
func fold(key []byte) []byte {
	out := make([]byte, 0, len(key))
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return out
}

// foldASCII upper-cases the ASCII letters of a key (already folded if it is
// not plain ASCII).
func foldASCII(key []byte) []byte {
	out := make([]byte, len(key))
	for i, c := range key {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// equalFoldASCII compares two stored keys, ASCII letters without regard to case.
func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

var errTrailing = errors.New("trailing data after the JSON value")
