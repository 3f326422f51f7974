package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCheckDuplicates(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2)
	tests := []struct {
		name, in string
		want     string // "" means accepted
	}{
		{"object", `{"a":1,"b":[true,false,null,-1.5e+3,"x\u00e9\n"],"c":{"a":{}}}`, ""},
		{"same key in sibling objects", `[{"a":1},{"a":2}]`, ""},
		{"same key at two depths", `{"a":{"a":{"a":1}}}`, ""},
		{"duplicate key", `{"a":1,"b":2,"a":3}`, `duplicate key "a" at $`},
		{"nested duplicate names its path", `{"x":[{},{"y":{"k":1,"k":2}}]}`, `duplicate key "k" at $.x[1].y`},
		{"duplicate that differs in case", `{"payload":"a","Payload":"b"}`, `duplicate key "Payload"`},
		{"duplicate spelled with an escape", `{"payload":"a","\u0070ayload":"b"}`, `duplicate key "payload"`},
		{"duplicate through Unicode folding (long s)", `{"subject":1,"\u017fubject":2}`, `duplicate key "ſubject"`},
		{"duplicate through Unicode folding (Kelvin sign)", `{"kind":1,"\u212aind":2}`, "duplicate key \"\u212aind\""},
		{"duplicate in a large object", `{` + manyKeys(40) + `,"k7":0}`, `duplicate key "k7"`},
		{"large object without duplicates", `{` + manyKeys(40) + `}`, ""},
		{"trailing data", `{"a":1} {"a":2}`, "trailing data"},
		{"trailing garbage", `{"a":1}x`, "trailing data"},
		{"empty input", ``, "unexpected end of input"},
		{"unterminated object", `{"a":1`, "unexpected end of input in object"},
		{"single quotes", `{'a':1}`, "object key is not a string"},
		{"bad escape", `{"a":"\x"}`, "invalid escape"},
		{"control character in string", "{\"a\":\"\x01\"}", "control character"},
		{"leading zero", `[01]`, "after array element"},
		{"bare minus", `[-]`, "invalid number"},
		{"too deep", deep, "nested deeper than 64"},
		{"deep enough", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDuplicates([]byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

func manyKeys(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return strings.Join(parts, ",")
}

// TestCaseFoldedKeysAreWhatEncodingJSONConflates shows why keys are compared
// without regard to case: encoding/json decodes both spellings into one field.
func TestCaseFoldedKeysAreWhatEncodingJSONConflates(t *testing.T) {
	var v struct {
		Subject string `json:"subject"`
	}
	for _, in := range []string{`{"subject":"a","SUBJECT":"b"}`, `{"subject":"a","\u017fubject":"b"}`} {
		if err := json.Unmarshal([]byte(in), &v); err != nil || v.Subject != "b" {
			t.Fatalf("encoding/json no longer conflates the keys of %s (got %q, %v); revisit the folding", in, v.Subject, err)
		}
		if err := CheckDuplicates([]byte(in)); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	type T struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	tests := []struct {
		name, in, want string
	}{
		{"unknown field", `{"a":1,"c":2}`, `unknown field "c"`},
		{"wrong type", `{"a":"1"}`, "field a: got JSON string, want int"},
		{"duplicate", `{"a":1,"a":2}`, "duplicate key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v T
			err := Unmarshal([]byte(tc.in), &v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	var v T
	if err := Unmarshal([]byte(`{"a":1,"b":"x"}`), &v); err != nil || v != (T{1, "x"}) {
		t.Fatalf("got %+v, %v", v, err)
	}
}

// referenceCheck is the token-walking duplicate check quorate used first:
// exact key comparison after unescaping. It is the oracle for the fuzzer.
func referenceCheck(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := refWalk(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

func refWalk(dec *json.Decoder, depth int) error {
	if depth > MaxDepth {
		return errors.New("too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			if seen[key] {
				return errors.New("duplicate key")
			}
			seen[key] = true
			if err := refWalk(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := refWalk(dec, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token()
	return err
}

// FuzzCheckDuplicates holds CheckDuplicates to encoding/json: it accepts
// only valid JSON, accepts nothing the exact-key reference refuses, and
// refuses valid JSON only for a (case-folded) duplicate key or depth.
func FuzzCheckDuplicates(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"A":2}`, `[{"\u0070":1,"p":2}]`, `"\ud800"`, `{"a":[1,2,{"b":null}]}`, "  true  ", `{"ſ":1,"s":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckDuplicates(data)
		valid := json.Valid(data)
		ref := referenceCheck(data)
		switch {
		case err == nil && !valid:
			t.Fatalf("accepted invalid JSON %q", data)
		case err == nil && ref != nil:
			t.Fatalf("accepted %q, which the reference refuses: %v", data, ref)
		case err != nil && valid && ref == nil && !strings.Contains(err.Error(), "duplicate key") && !strings.Contains(err.Error(), "nested deeper"):
			t.Fatalf("refused valid JSON %q: %v", data, err)
		}
		if err == nil {
			// UseNumber: a valid number beyond float64 (which CheckDuplicates
			// rightly accepts) is not a decoding failure here.
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			var v any
			if uerr := dec.Decode(&v); uerr != nil {
				t.Fatalf("accepted %q but encoding/json fails: %v", data, uerr)
			}
		}
	})
}
