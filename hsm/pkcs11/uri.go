package pkcs11

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/quorate-dev/quorate/hsm"
)

// Scheme is the URI scheme this backend handles.
const Scheme = "pkcs11"

// Environment fallbacks, read only through [hsm.Options.Getenv].
const (
	EnvModule = "QUORATE_PKCS11_MODULE"
	EnvPIN    = "QUORATE_PKCS11_PIN"
)

// Pool size bounds for the pool-size= query attribute. crypto11 needs at
// least two sessions (one is kept open to hold the login).
const (
	minPoolSize = 2
	maxPoolSize = 1024
)

// maxPINFileSize bounds what pin-source= reads.
const maxPINFileSize = 1024

// ErrBadURI is returned (wrapped) for a pkcs11: URI that does not parse.
var ErrBadURI = errors.New("bad pkcs11: key URI")

// URI is a parsed RFC 7512 PKCS#11 URI, restricted to the attributes quorate
// uses. Its String method never shows the PIN.
type URI struct {
	// Token selection (path attributes token, serial, model, manufacturer,
	// slot-id). Every one given must match.
	Token        string
	Serial       string
	Model        string
	Manufacturer string
	SlotID       *uint

	// Key selection (path attributes object, id, type).
	Object string
	ID     []byte
	Type   string

	// Query attributes.
	ModulePath string // module-path
	PINSource  string // pin-source (a file: URI or an absolute path)
	PoolSize   int    // pool-size; 0 means crypto11's default

	pinValue string // pin-value; never printed
}

// pathAttrs and queryAttrs list the attributes quorate accepts. Anything else
// is refused, so that a typo ("objet=") does not silently select another key.
var (
	pathAttrs  = []string{"token", "serial", "model", "manufacturer", "slot-id", "object", "id", "type"}
	queryAttrs = []string{"module-path", "pin-source", "pin-value", "pool-size"}
)

// ParseURI parses a pkcs11: key URI. Errors name the URI with its PIN
// redacted.
func ParseURI(raw string) (*URI, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrBadURI, redactRaw(raw), fmt.Sprintf(format, args...))
	}
	rest, ok := cutPrefixFold(raw, Scheme+":")
	if !ok {
		return nil, bad("scheme is not pkcs11:")
	}
	if strings.ContainsAny(rest, "#") {
		return nil, bad("a pkcs11: URI has no fragment ('#')")
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &URI{}
	seen := map[string]bool{}
	if err := eachAttr(path, ";", pathAttrs, seen, func(name, value string) error {
		return u.setPath(name, value)
	}); err != nil {
		return nil, bad("%v", err)
	}
	if err := eachAttr(query, "&", queryAttrs, seen, func(name, value string) error {
		return u.setQuery(name, value)
	}); err != nil {
		return nil, bad("%v", err)
	}
	if u.PINSource != "" && seen["pin-value"] {
		return nil, bad("give pin-source or pin-value, not both")
	}
	return u, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// eachAttr splits s on sep into name=value pairs, percent-decodes the values
// and hands them to set. It refuses unknown and repeated attributes.
func eachAttr(s, sep string, known []string, seen map[string]bool, set func(name, value string) error) error {
	if s == "" {
		return nil
	}
	for i, part := range strings.Split(s, sep) {
		if part == "" {
			continue
		}
		name, enc, ok := strings.Cut(part, "=")
		if !ok {
			// Do not echo the text: it may be a PIN typed without its name.
			return fmt.Errorf("attribute %d (separated by %q) has no '='", i+1, sep)
		}
		name = strings.ToLower(name)
		if !slices.Contains(known, name) {
			return fmt.Errorf("unsupported attribute %q here (supported: %s)", redactName(name), strings.Join(known, ", "))
		}
		if seen[name] {
			return fmt.Errorf("attribute %q given twice", name)
		}
		seen[name] = true
		value, err := url.PathUnescape(enc)
		if err != nil {
			if name == "pin-value" {
				return errors.New("attribute \"pin-value\" has a bad percent-encoding")
			}
			return fmt.Errorf("attribute %q: bad percent-encoding: %v", name, err)
		}
		if value == "" {
			return fmt.Errorf("attribute %q is empty", name)
		}
		if err := set(name, value); err != nil {
			return err
		}
	}
	return nil
}

// redactRaw shows a URI that may not parse without any secret: path
// attributes go through [hsm.Redact], and in the query only module-path,
// pin-source and pool-size keep their values.
func redactRaw(raw string) string {
	path, query, hasQuery := strings.Cut(raw, "?")
	path = hsm.Redact(path)
	if i := strings.IndexAny(path, "#"); i >= 0 {
		path = path[:i] + "#REDACTED"
	}
	if !hasQuery {
		return path
	}
	parts := strings.Split(query, "&")
	for i, part := range parts {
		name, _, hasValue := strings.Cut(part, "=")
		if !hasValue {
			parts[i] = "REDACTED"
			continue
		}
		switch strings.ToLower(name) {
		case "module-path", "pin-source", "pool-size":
			if !strings.ContainsAny(part, "#") {
				continue
			}
		}
		parts[i] = redactName(name) + "=REDACTED"
	}
	return path + "?" + strings.Join(parts, "&")
}

// redactName keeps an attribute name short and free of values for messages.
func redactName(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

func (u *URI) setPath(name, v string) error {
	switch name {
	case "token":
		u.Token = v
	case "serial":
		u.Serial = v
	case "model":
		u.Model = v
	case "manufacturer":
		u.Manufacturer = v
	case "slot-id":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("slot-id %q is not a decimal slot number", v)
		}
		id := uint(n)
		u.SlotID = &id
	case "object":
		u.Object = v
	case "id":
		u.ID = []byte(v)
	case "type":
		if v != "private" && v != "public" {
			return fmt.Errorf("type=%q names no key pair (want type=private or leave it out)", v)
		}
		u.Type = v
	}
	return nil
}

func (u *URI) setQuery(name, v string) error {
	switch name {
	case "module-path":
		u.ModulePath = v
	case "pin-source":
		u.PINSource = v
	case "pin-value":
		u.pinValue = v
	case "pool-size":
		n, err := strconv.Atoi(v)
		if err != nil || n < minPoolSize || n > maxPoolSize {
			return fmt.Errorf("pool-size=%q: want a number of sessions from %d to %d", v, minPoolSize, maxPoolSize)
		}
		u.PoolSize = n
	}
	return nil
}

// HasTokenSelector reports whether the URI names a token.
func (u *URI) HasTokenSelector() bool {
	return u.Token != "" || u.Serial != "" || u.Model != "" || u.Manufacturer != "" || u.SlotID != nil
}

// HasKeySelector reports whether the URI names a key (object= or id=).
func (u *URI) HasKeySelector() bool { return u.Object != "" || len(u.ID) > 0 }

// HasPINValue reports whether the URI carries a pin-value attribute.
func (u *URI) HasPINValue() bool { return u.pinValue != "" }

// Module returns the module path: module-path= or, failing that, the
// QUORATE_PKCS11_MODULE environment variable read through getenv.
func (u *URI) Module(getenv func(string) string) (string, error) {
	if u.ModulePath != "" {
		return u.ModulePath, nil
	}
	if getenv != nil {
		if m := getenv(EnvModule); m != "" {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w %q: no PKCS#11 module: add ?module-path=/path/to/module.so (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so) or set %s", ErrBadURI, u.String(), EnvModule)
}

// HasPIN reports whether the URI gives a PIN, in any of the ways [URI.PIN]
// reads one (the environment through getenv).
func (u *URI) HasPIN(getenv func(string) string) bool {
	return u.PINSource != "" || u.pinValue != "" || getenv != nil && getenv(EnvPIN) != ""
}

// PIN returns the user PIN: from pin-source= (a file), pin-value=, or the
// QUORATE_PKCS11_PIN environment variable read through getenv, in that order.
// Errors never contain the PIN.
func (u *URI) PIN(getenv func(string) string) (string, error) {
	switch {
	case u.PINSource != "":
		return readPINFile(u.PINSource)
	case u.pinValue != "":
		return u.pinValue, nil
	}
	if getenv != nil {
		if p := getenv(EnvPIN); p != "" {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w %q: no PIN: add ?pin-source=file:/path/to/pin-file or set %s", ErrBadURI, u.String(), EnvPIN)
}

// readPINFile reads a PIN from a pin-source: "file:/abs", "file:///abs" or a
// plain path. One trailing newline is dropped.
func readPINFile(src string) (string, error) {
	path := src
	if rest, ok := cutPrefixFold(src, "file:"); ok {
		path = rest
		if strings.HasPrefix(path, "//") {
			path = strings.TrimPrefix(path, "//")
			if !strings.HasPrefix(path, "/") {
				return "", fmt.Errorf("pin-source %q: file:// needs an absolute path (file:///abs/path)", src)
			}
		}
	} else if strings.Contains(src, "://") {
		return "", fmt.Errorf("pin-source %q: only file: PIN sources are supported", src)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading PIN from pin-source %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPINFileSize+1))
	if err != nil {
		return "", fmt.Errorf("reading PIN from pin-source %s: %w", path, err)
	}
	if len(data) > maxPINFileSize {
		return "", fmt.Errorf("pin-source %s is larger than %d bytes; it should hold only the PIN", path, maxPINFileSize)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if pin == "" {
		return "", fmt.Errorf("pin-source %s is empty", path)
	}
	return pin, nil
}

// String returns the URI in canonical form with any pin-value shown as
// REDACTED. It is safe for logs and errors.
func (u *URI) String() string { return u.format(true) }

// GoString is String, so that %#v does not print the PIN either.
func (u *URI) GoString() string { return u.String() }

// Public returns the URI in canonical form without pin-value, suitable to
// hand out (for example in a key list).
func (u *URI) Public() string { return u.format(false) }

func (u *URI) format(withRedactedPIN bool) string {
	var path []string
	add := func(name, v string) {
		if v != "" {
			path = append(path, name+"="+escape(v))
		}
	}
	add("token", u.Token)
	add("serial", u.Serial)
	add("model", u.Model)
	add("manufacturer", u.Manufacturer)
	if u.SlotID != nil {
		path = append(path, "slot-id="+strconv.FormatUint(uint64(*u.SlotID), 10))
	}
	add("object", u.Object)
	if len(u.ID) > 0 {
		path = append(path, "id="+escapeAll(u.ID))
	}
	add("type", u.Type)
	var query []string
	if u.ModulePath != "" {
		query = append(query, "module-path="+escape(u.ModulePath))
	}
	if u.PINSource != "" {
		query = append(query, "pin-source="+escape(u.PINSource))
	}
	if withRedactedPIN && u.pinValue != "" {
		query = append(query, "pin-value=REDACTED")
	}
	if u.PoolSize != 0 {
		query = append(query, "pool-size="+strconv.Itoa(u.PoolSize))
	}
	s := Scheme + ":" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// WithKey returns a copy of u naming the key with the given label and ID,
// without pin-value.
func (u *URI) WithKey(label string, id []byte) *URI {
	c := *u
	c.pinValue = ""
	c.Object = label
	c.ID = append([]byte(nil), id...)
	c.Type = ""
	return &c
}

// escape percent-encodes everything but RFC 3986 unreserved characters and
// the few that RFC 7512 allows unencoded in values.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || c == ':' || c == '/' || c == '@' || c == '!' || c == '$' || c == '\'' || c == '(' || c == ')' || c == '*' || c == '+' || c == ',' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// escapeAll percent-encodes every byte, as RFC 7512 recommends for id=.
func escapeAll(p []byte) string {
	var b strings.Builder
	for _, c := range p {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
