// Package strictjson decodes JSON that security decisions rest on: it
// refuses duplicate object keys (which different parsers resolve
// differently, including keys that differ only in case or escaping), trailing
// data, and, when asked, unknown fields.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxDepth bounds nesting so hostile input cannot exhaust the stack.
const MaxDepth = 64

// CheckDuplicates returns an error naming the first object key that appears
// twice in one object, with its JSON path; it also rejects invalid JSON,
// nesting deeper than [MaxDepth] and trailing data after the value.
//
// Keys are compared as encoding/json matches them to struct fields: after
// unescaping and without regard to case, so "payload", "Payload" and
// "\u0070ayload" are one key. (encoding/json would decode whichever comes
// last, while a case-sensitive parser elsewhere reads another: the same
// bytes would mean two things.)
func CheckDuplicates(data []byte) error {
	s := newScanner(data)
	if err := s.value(0); err != nil {
		return err
	}
	s.ws()
	if s.pos != len(data) {
		return errTrailing
	}
	return nil
}

// Unmarshal checks data with [CheckDuplicates] and decodes it into v,
// refusing fields v does not know.
func Unmarshal(data []byte, v any) error {
	if err := CheckDuplicates(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Describe(err)
	}
	return nil
}

// Describe turns encoding/json errors into messages that name the field.
func Describe(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("field %s: got JSON %s, want %s", field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return err
}
