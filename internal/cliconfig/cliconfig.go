// Package cliconfig is the quorate CLI's configuration: a YAML file of named
// contexts (like kubectl's kubeconfig or the gh and step CLIs' config files),
// environment variables, and the one precedence rule that combines them with
// command-line flags:
//
//	flag  >  environment variable  >  current context  >  built-in default
//
// # The file
//
// By default $XDG_CONFIG_HOME/quorate/config.yaml (else
// $HOME/.config/quorate/config.yaml); $QUORATE_CONFIG or --config name
// another. A missing default file is an empty configuration; a file named
// explicitly must exist when read.
//
//	current-context: prod
//	contexts:
//	  prod:
//	    coordinator: https://quorate.example.com:8443
//	    ca-cert: ca.pem              # relative paths are relative to this file
//	    client-cert: me.crt
//	    client-key: me.key
//	    token-file: ~/.quorate-token
//	    key: pkcs11:token=ops;object=release
//	    trust: /etc/quorate/trust
//	    output: json
//
// Unknown fields are an error (a typo must not silently drop a setting).
// [Save] writes the file atomically with mode 0600.
//
// # Which context
//
// --context NAME, else $QUORATE_CONTEXT, else the file's current-context;
// naming a context the file does not hold is an error.
package cliconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/quorate-dev/quorate/internal/atomicfile"
)

// Context is one named set of defaults.
type Context struct {
	Coordinator string `yaml:"coordinator,omitempty" json:"coordinator,omitempty"`
	CACert      string `yaml:"ca-cert,omitempty" json:"ca-cert,omitempty"`
	ClientCert  string `yaml:"client-cert,omitempty" json:"client-cert,omitempty"`
	ClientKey   string `yaml:"client-key,omitempty" json:"client-key,omitempty"`
	TokenFile   string `yaml:"token-file,omitempty" json:"token-file,omitempty"`
	Key         string `yaml:"key,omitempty" json:"key,omitempty"`
	Trust       string `yaml:"trust,omitempty" json:"trust,omitempty"`
	Output      string `yaml:"output,omitempty" json:"output,omitempty"`
}

// File is the configuration file.
type File struct {
	CurrentContext string              `yaml:"current-context,omitempty" json:"current-context,omitempty"`
	Contexts       map[string]*Context `yaml:"contexts,omitempty" json:"contexts,omitempty"`

	// Path is where the file was read from (or will be written to).
	Path string `yaml:"-" json:"-"`
}

// Setting is one value that a flag, an environment variable or a context
// may give.
type Setting struct {
	// Flag is the command-line flag's name, without dashes.
	Flag string
	// Env lists the environment variables giving it, the first set wins.
	Env []string
	// Field reads the value from a context.
	Field func(*Context) string
	// Path: the value names a file, and a relative path in the
	// configuration file is relative to the file's directory.
	Path bool
	// Shadow lists environment variables that give the same thing another
	// way (QUORATE_TOKEN, the token itself, for token-file): when one is
	// set, the context's value does not apply.
	Shadow []string
}

// Settings are the flags the configuration fills, by flag name.
var Settings = []Setting{
	{Flag: "coordinator", Env: []string{"QUORATE_COORDINATOR"}, Field: func(c *Context) string { return c.Coordinator }},
	{Flag: "ca-cert", Env: []string{"QUORATE_CACERT"}, Field: func(c *Context) string { return c.CACert }, Path: true},
	{Flag: "client-cert", Env: []string{"QUORATE_CLIENT_CERT"}, Field: func(c *Context) string { return c.ClientCert }, Path: true},
	{Flag: "client-key", Env: []string{"QUORATE_CLIENT_KEY"}, Field: func(c *Context) string { return c.ClientKey }, Path: true},
	{Flag: "token-file", Env: []string{"QUORATE_TOKEN_FILE"}, Field: func(c *Context) string { return c.TokenFile }, Path: true, Shadow: []string{"QUORATE_TOKEN"}},
	{Flag: "key", Env: []string{"QUORATE_KEY"}, Field: func(c *Context) string { return c.Key }},
	{Flag: "trust", Env: []string{"QUORATE_TRUST"}, Field: func(c *Context) string { return c.Trust }, Path: true},
	{Flag: "output", Env: []string{"QUORATE_OUTPUT"}, Field: func(c *Context) string { return c.Output }},
}

// Lookup returns the setting filling flag name.
func Lookup(name string) (Setting, bool) {
	for _, s := range Settings {
		if s.Flag == name {
			return s, true
		}
	}
	return Setting{}, false
}

// Source says where a resolved value came from.
type Source struct {
	Kind string // "flag", "env", "context" or "default"
	Name string // the environment variable or context name
}

func (s Source) String() string {
	switch s.Kind {
	case "env":
		return "$" + s.Name
	case "context":
		return "context " + s.Name
	}
	return s.Kind
}

// Rank orders sources by precedence: higher wins.
func (s Source) Rank() int {
	switch s.Kind {
	case "flag":
		return 3
	case "env":
		return 2
	case "context":
		return 1
	}
	return 0
}

// Resolved is the effective configuration for one invocation.
type Resolved struct {
	File        *File
	Context     *Context // nil when no context applies
	ContextName string
	Getenv      func(string) string
}

// Resolve returns the value of s when its flag was not given: the first
// environment variable set, else the context's value; ok is false when
// neither gives one (the flag's default applies). A flag given on the
// command line always wins: callers do not call Resolve for it.
func (r *Resolved) Resolve(s Setting) (value string, src Source, ok bool) {
	for _, e := range s.Env {
		if v := r.getenv(e); v != "" {
			return v, Source{Kind: "env", Name: e}, true
		}
	}
	for _, e := range s.Shadow {
		if r.getenv(e) != "" {
			return "", Source{Kind: "env", Name: e}, false
		}
	}
	if r.Context != nil {
		if v := s.Field(r.Context); v != "" {
			if s.Path {
				v = r.File.resolvePath(v, r.getenv)
			}
			return v, Source{Kind: "context", Name: r.ContextName}, true
		}
	}
	return "", Source{Kind: "default"}, false
}

func (r *Resolved) getenv(k string) string {
	if r.Getenv == nil {
		return ""
	}
	return r.Getenv(k)
}

// resolvePath expands a leading ~/ and makes a relative path relative to
// the configuration file's directory (as kubectl does for kubeconfig).
func (f *File) resolvePath(p string, getenv func(string) string) string {
	if strings.HasPrefix(p, "~/") {
		if home := getenv("HOME"); home != "" {
			return filepath.Join(home, p[2:])
		}
	}
	if filepath.IsAbs(p) || f.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(f.Path), p)
}

// DefaultPath is where the configuration file lives when neither --config
// nor $QUORATE_CONFIG names one: $XDG_CONFIG_HOME/quorate/config.yaml, else
// $HOME/.config/quorate/config.yaml; "" when neither variable is set.
func DefaultPath(getenv func(string) string) string {
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "quorate", "config.yaml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "quorate", "config.yaml")
	}
	return ""
}

// ErrNoContext is returned when the context asked for is not in the file.
var ErrNoContext = errors.New("no such context")

// Load reads the configuration file at path. When explicit is false a
// missing file is an empty configuration.
func Load(path string, explicit bool) (*File, error) {
	f := &File{Path: path}
	if path == "" {
		return f, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	if err := f.parse(data); err != nil {
		return nil, fmt.Errorf("configuration %s: %w", path, err)
	}
	return f, nil
}

func (f *File) parse(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	for name, c := range f.Contexts {
		if c == nil {
			f.Contexts[name] = &Context{}
		}
	}
	if f.CurrentContext != "" && f.Contexts[f.CurrentContext] == nil {
		return fmt.Errorf("current-context %q: %w", f.CurrentContext, ErrNoContext)
	}
	return nil
}

// Select returns the effective configuration: the context named (the
// --context flag), else $QUORATE_CONTEXT, else the file's current context.
func (f *File) Select(name string, getenv func(string) string) (*Resolved, error) {
	r := &Resolved{File: f, Getenv: getenv}
	from := "--context"
	if name == "" && getenv != nil {
		name, from = getenv("QUORATE_CONTEXT"), "$QUORATE_CONTEXT"
	}
	if name == "" {
		name, from = f.CurrentContext, "current-context"
	}
	if name == "" {
		return r, nil
	}
	c := f.Contexts[name]
	if c == nil {
		return nil, fmt.Errorf("%s %q: %w (have: %s)", from, name, ErrNoContext, strings.Join(f.Names(), ", "))
	}
	r.Context, r.ContextName = c, name
	return r, nil
}

// Names lists the contexts, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Contexts))
	for n := range f.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Redacted returns a copy of f whose key URIs went through redact (which
// hides inline PINs), for display.
func (f *File) Redacted(redact func(string) string) *File {
	g := *f
	g.Contexts = make(map[string]*Context, len(f.Contexts))
	for n, c := range f.Contexts {
		cc := *c
		cc.Key = redact(cc.Key)
		g.Contexts[n] = &cc
	}
	return &g
}

// Marshal returns the file as YAML.
func (f *File) Marshal() ([]byte, error) {
	return yaml.Marshal(f)
}

// Save writes the file to f.Path atomically with mode 0600, creating its
// directory (0700) when missing.
func (f *File) Save() error {
	if f.Path == "" {
		return errors.New("no configuration file path: set $XDG_CONFIG_HOME or $HOME, or give --config")
	}
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("creating configuration directory: %w", err)
	}
	return atomicfile.Write(f.Path, data, 0o600)
}

// SetField sets a context field by its flag name.
func (c *Context) SetField(name, value string) error {
	p := map[string]*string{
		"coordinator": &c.Coordinator, "ca-cert": &c.CACert, "client-cert": &c.ClientCert,
		"client-key": &c.ClientKey, "token-file": &c.TokenFile, "key": &c.Key, "trust": &c.Trust, "output": &c.Output,
	}[name]
	if p == nil {
		return fmt.Errorf("unknown context field %q", name)
	}
	*p = value
	return nil
}

// Apply fills every flag of fs that a [Setting] names, that was not given
// on the command line and for which use(flag) is true (nil: all), from the
// environment, else the context. It returns where each such flag's value
// comes from (flag, env, context or default).
func (r *Resolved) Apply(fs *pflag.FlagSet, use func(flag string) bool) (map[string]Source, error) {
	got := map[string]Source{}
	for _, s := range Settings {
		fl := fs.Lookup(s.Flag)
		if fl == nil || (use != nil && !use(s.Flag)) {
			continue
		}
		if fl.Changed {
			got[s.Flag] = Source{Kind: "flag"}
			continue
		}
		v, src, ok := r.Resolve(s)
		if !ok {
			got[s.Flag] = Source{Kind: "default"}
			continue
		}
		if err := fl.Value.Set(v); err != nil {
			return got, fmt.Errorf("--%s from %s: %w", s.Flag, src, err)
		}
		got[s.Flag] = src
	}
	return got, nil
}
