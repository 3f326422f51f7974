package cliconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

const sample = `current-context: prod
contexts:
  prod:
    coordinator: https://prod.example.com
    key: file:prod.key
    trust: trust
    ca-cert: /etc/quorate/ca.pem
    token-file: ~/token
    output: json
  dev:
    coordinator: http://127.0.0.1:7443
`

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func loadSample(t *testing.T) *File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPrecedence: flag > env > context > default, for every way of
// choosing the context.
func TestPrecedence(t *testing.T) {
	f := loadSample(t)
	dir := filepath.Dir(f.Path)
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		context string // --context
		flag    string
		want    string
		source  string
	}{
		{name: "flag beats env and context", args: []string{"--coordinator", "http://flag"}, env: map[string]string{"QUORATE_COORDINATOR": "http://env"}, flag: "coordinator", want: "http://flag", source: "flag"},
		{name: "env beats context", env: map[string]string{"QUORATE_COORDINATOR": "http://env"}, flag: "coordinator", want: "http://env", source: "$QUORATE_COORDINATOR"},
		{name: "context beats default", flag: "coordinator", want: "https://prod.example.com", source: "context prod"},
		{name: "default when no context gives it", flag: "client-cert", want: "", source: "default"},
		{name: "flag equal to the default still beats context", args: []string{"--output", "text"}, flag: "output", want: "text", source: "flag"},
		{name: "env QUORATE_KEY fills --key", env: map[string]string{"QUORATE_KEY": "file:env.key"}, flag: "key", want: "file:env.key", source: "$QUORATE_KEY"},
		{name: "context path relative to the config file", flag: "trust", want: filepath.Join(dir, "trust"), source: "context prod"},
		{name: "context path with tilde", env: map[string]string{"HOME": "/home/u"}, flag: "token-file", want: "/home/u/token", source: "context prod"},
		{name: "env QUORATE_TOKEN shadows the context token file", env: map[string]string{"QUORATE_TOKEN": "s3cret"}, flag: "token-file", want: "", source: "default"},
		{name: "env QUORATE_TOKEN_FILE beats context", env: map[string]string{"QUORATE_TOKEN_FILE": "/run/token"}, flag: "token-file", want: "/run/token", source: "$QUORATE_TOKEN_FILE"},
		{name: "context flag beats env QUORATE_CONTEXT and current-context", context: "dev", env: map[string]string{"QUORATE_CONTEXT": "prod"}, flag: "coordinator", want: "http://127.0.0.1:7443", source: "context dev"},
		{name: "env QUORATE_CONTEXT beats current-context", env: map[string]string{"QUORATE_CONTEXT": "dev"}, flag: "coordinator", want: "http://127.0.0.1:7443", source: "context dev"},
		{name: "context without the field falls to default", context: "dev", flag: "key", want: "", source: "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			for _, s := range Settings {
				def := ""
				if s.Flag == "output" {
					def = "text"
				}
				fs.String(s.Flag, def, "")
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			r, err := f.Select(tc.context, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			srcs, err := r.Apply(fs, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := fs.GetString(tc.flag)
			want := tc.want
			if want == "" && tc.flag == "output" {
				want = "text"
			}
			if got != want || srcs[tc.flag].String() != tc.source {
				t.Fatalf("--%s = %q from %s, want %q from %s", tc.flag, got, srcs[tc.flag], want, tc.source)
			}
		})
	}
}

func TestApplyOnlyWhereUsed(t *testing.T) {
	f := loadSample(t)
	r, err := f.Select("", envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("key", "", "")
	fs.String("coordinator", "", "")
	if _, err := r.Apply(fs, func(name string) bool { return name != "key" }); err != nil {
		t.Fatal(err)
	}
	if k, _ := fs.GetString("key"); k != "" {
		t.Fatalf("--key filled with %q where not used", k)
	}
	if fs.Lookup("coordinator").Changed {
		t.Fatal("a filled flag must not look given on the command line")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{name: "unknown field is refused", content: "contexts:\n  a:\n    coordinatr: x\n", want: "coordinatr"},
		{name: "current context missing", content: "current-context: nope\n", want: "no such context"},
		{name: "not yaml", content: "contexts: [\n", want: "configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(p, true); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "absent"), true); err == nil {
		t.Fatal("an explicit missing file must be an error")
	}
	f, err := Load(filepath.Join(dir, "absent"), false)
	if err != nil || len(f.Contexts) != 0 {
		t.Fatalf("default missing file: %v, %v; want empty", f, err)
	}
	if _, err := f.Select("ghost", envOf(nil)); !errors.Is(err, ErrNoContext) {
		t.Fatalf("Select(ghost): %v, want ErrNoContext", err)
	}
}

func TestSaveRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "config.yaml")
	f := &File{Path: p, CurrentContext: "a", Contexts: map[string]*Context{"a": {Coordinator: "https://a", Key: "pkcs11:token=t;object=k"}}}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	g, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if g.CurrentContext != "a" || *g.Contexts["a"] != *f.Contexts["a"] {
		t.Fatalf("round trip: %+v", g)
	}
}

func TestDefaultPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "XDG_CONFIG_HOME wins", env: map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, want: "/x/quorate/config.yaml"},
		{name: "HOME fallback", env: map[string]string{"HOME": "/h"}, want: "/h/.config/quorate/config.yaml"},
		{name: "neither", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DefaultPath(envOf(tc.env)); got != tc.want {
				t.Fatalf("DefaultPath = %q, want %q", got, tc.want)
			}
		})
	}
}
