package strictjson

import (
	"bytes"
	"strings"
	"testing"
)

// walkAll walks the value at w to the end, consuming it with the Walker's
// methods; leave decides, member by member, to leave a value for the Walker
// to scan instead. It returns the values it consumed, in order, as written.
func walkAll(w *Walker, leave func() bool) ([]string, error) {
	var got []string
	var walk func() error
	walk = func() error {
		switch k := w.Kind(); {
		case k == '{':
			return w.Object(func(key []byte, plain bool) error {
				got = append(got, "key:"+string(key))
				if leave() {
					return nil
				}
				return walk()
			})
		case k == '[':
			return w.Array(func(int) error {
				if leave() {
					return nil
				}
				return walk()
			})
		case k == '"':
			raw, plain, err := w.String()
			if plain && bytes.ContainsAny(raw, "\\\x80") {
				panic("plain string with an escape")
			}
			got = append(got, "string:"+string(raw))
			return err
		case k == '-' || '0' <= k && k <= '9':
			num, err := w.Number()
			got = append(got, "number:"+string(num))
			return err
		default:
			raw, err := w.Skip()
			got = append(got, "other:"+string(raw))
			return err
		}
	}
	if err := walk(); err != nil {
		return got, err
	}
	return got, w.End()
}

func TestWalker(t *testing.T) {
	in := []byte(` {"a": [1, -2.5e3, "x\u00e9", true, null], "b": {"c": {}}, "d": "plain"} `)
	w := NewWalker(in)
	got, err := walkAll(&w, func() bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	want := `key:a number:1 number:-2.5e3 string:x\u00e9 other:true other:null key:b key:c key:d string:plain`
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("walked\n%s\nwant\n%s", s, want)
	}

	// Skip and Offset give values as written, without the space around them.
	w = NewWalker(in)
	var raw []byte
	err = w.Object(func(key []byte, _ bool) error {
		if string(key) == "b" {
			start := w.Offset()
			_, err := w.Skip()
			raw = in[start:w.Offset()]
			return err
		}
		return nil
	})
	if err != nil || w.End() != nil || string(raw) != `{"c": {}}` {
		t.Fatalf("got %q, %v", raw, err)
	}

	for _, tc := range []struct{ in, want string }{
		{`{"a":1,"A":2}`, `duplicate key "A" at $`},
		{`{"a":[{"b":1,"\u0062":2}]}`, `duplicate key "b" at $.a[0]`},
		{`{"a":1} x`, "trailing data"},
		{`{"a":tru}`, "invalid literal"},
	} {
		w := NewWalker([]byte(tc.in))
		if _, err := walkAll(&w, func() bool { return false }); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}

	// An error a callback drops still fails the walk: here the string's bad
	// escape leaves the scanner just before a '}' that would end the object.
	w = NewWalker([]byte(`{"a":"\}`))
	err = w.Object(func([]byte, bool) error {
		w.String() //nolint:errcheck // dropped on purpose
		return nil
	})
	if err == nil || w.End() == nil || !strings.Contains(err.Error(), "invalid escape") {
		t.Fatalf("dropped error: got %v", err)
	}

	// A method that finds another kind of value fails without consuming it.
	w = NewWalker([]byte(`{"a":1}`))
	err = w.Object(func([]byte, bool) error {
		_, _, err := w.String()
		return err
	})
	if err == nil || !strings.Contains(err.Error(), `unexpected character '1' (want a string)`) {
		t.Fatalf("error %v", err)
	}
}

// FuzzWalker holds the Walker to CheckDuplicates: walking a document to the
// end, consuming some values and leaving others, accepts exactly what
// CheckDuplicates accepts, with the same error.
func FuzzWalker(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"A":2}`, `[{"\u0070":1,"p":2}]`, `"\ud800"`, `{"a":[1,2,{"b":null}]}`, "  true  ", `{"ſ":1,"s":2}`, `{"a":{"b":[[]]}} x`, strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)} {
		f.Add([]byte(s), uint64(0))
		f.Add([]byte(s), uint64(0xa5a5a5a5a5a5a5a5))
	}
	f.Fuzz(func(t *testing.T, data []byte, choices uint64) {
		want := CheckDuplicates(data)
		w := NewWalker(data)
		_, got := walkAll(&w, func() bool {
			choices = choices>>1 | choices<<63
			return choices&1 == 1
		})
		switch {
		case (got == nil) != (want == nil):
			t.Fatalf("%q: walker %v, CheckDuplicates %v", data, got, want)
		case got != nil && got.Error() != want.Error():
			t.Fatalf("%q: walker %q, CheckDuplicates %q", data, got, want)
		}
	})
}
