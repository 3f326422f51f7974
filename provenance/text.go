package provenance

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/quorate-dev/quorate/attest"
)

// checkIdentifier and checkFreeText apply attest's text rules (what a
// party is shown must be printable: no control, bidirectional or invisible
// characters) to the value s of field.
func checkIdentifier(field, s string) error { return attest.CheckIdentifier(field, s) }

func checkFreeText(field, s string) error { return attest.CheckFreeText(field, s) }

// checkStrings applies the free-text rule to every key and string of the
// JSON document data.
func checkStrings(field string, data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, field, err)
	}
	if err := walkStrings(v, field, checkFreeText); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// walkStrings calls fn with every object key and string of v, with its
// path.
func walkStrings(v any, path string, fn func(path, s string) error) error {
	switch v := v.(type) {
	case string:
		return fn(path, v)
	case []any:
		for i, e := range v {
			if err := walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := path + "." + strconv.Quote(k)
			if err := fn(p+" (key)", k); err != nil {
				return err
			}
			if err := walkStrings(v[k], p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
