package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// The scripts' JSON commands (registered in TestScripts):
//
//	json FILE [PATH [VALUE]]  FILE (or stdout, stderr) is exactly one JSON document, parsed
//	                          by encoding/json; PATH (dot-separated object keys and array
//	                          indexes, 'len()' for an array's or object's length) exists and, with
//	                          VALUE, equals it (a string without its quotes; anything else as
//	                          compact JSON). '! json FILE PATH' requires PATH to be absent.
//	jsonflip FILE PATH        flip one bit of the base64 string at PATH (same length, still
//	                          base64): tampering with a hash or signature in a JSON file
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 3 || (neg && len(args) != 2) {
		ts.Fatalf("usage: json FILE [PATH [VALUE]]; ! json FILE PATH")
	}
	doc := parseJSONDoc(ts, args[0])
	if len(args) == 1 {
		return
	}
	got, ok := jsonPath(doc, args[1])
	switch {
	case neg && ok:
		ts.Fatalf("%s: %s is present (%s), want it absent", args[0], args[1], render(got))
	case neg:
		return
	case !ok:
		ts.Fatalf("%s: no %s in %s", args[0], args[1], clipDoc(ts.ReadFile(args[0])))
	case len(args) == 3 && render(got) != args[2]:
		ts.Fatalf("%s: %s is %s, want %s", args[0], args[1], render(got), args[2])
	}
}

func cmdJSONFlip(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonflip FILE PATH")
	}
	raw := ts.ReadFile(args[0])
	doc := parseJSONDoc(ts, args[0])
	v, ok := jsonPath(doc, args[1])
	s, isString := v.(string)
	if !ok || !isString {
		ts.Fatalf("%s: %s is not a string", args[0], args[1])
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		ts.Fatalf("%s: %s is not base64: %v", args[0], args[1], err)
	}
	b[0] ^= 1
	flipped := base64.StdEncoding.EncodeToString(b)
	quoted := strconv.Quote(s)
	if strings.Count(raw, quoted) != 1 {
		ts.Fatalf("%s: %s's value is not unique in the file", args[0], args[1])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Replace(raw, quoted, strconv.Quote(flipped), 1)), 0o644))
}

func parseJSONDoc(ts *testscript.TestScript, file string) any {
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(file)))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		ts.Fatalf("%s is not JSON: %v", file, err)
	}
	if _, err := dec.Token(); err == nil {
		ts.Fatalf("%s holds more than one JSON document", file)
	}
	return doc
}

// jsonPath follows path (a.b.0.c; 'len()' is a length) in doc.
func jsonPath(doc any, path string) (any, bool) {
	if path == "." {
		return doc, true
	}
	cur := doc
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			if p == "len()" {
				cur = json.Number(strconv.Itoa(len(c)))
				continue
			}
			v, ok := c[p]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			if p == "len()" {
				cur = json.Number(strconv.Itoa(len(c)))
				continue
			}
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func render(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(b.String())
}

func clipDoc(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}
