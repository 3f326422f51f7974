package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	slot := func(n uint) *uint { return &n }
	cases := []struct {
		name string
		in   string
		want URI
		pin  string // the pin-value expected inside
	}{
		{"token and object", "pkcs11:token=release;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
			URI{Token: "release", Object: "root-1", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINSource: "file:/run/pin"}, ""},
		{"percent-encoded id and label", "pkcs11:token=My%20Token;object=a%3Bb;id=%01%ff%00",
			URI{Token: "My Token", Object: "a;b", ID: []byte{1, 0xff, 0}}, ""},
		{"scheme in upper case", "PKCS11:token=t;object=o", URI{Token: "t", Object: "o"}, ""},
		{"serial model manufacturer slot", "pkcs11:serial=abc;model=SoftHSM%20v2;manufacturer=SoftHSM%20project;slot-id=42;type=private",
			URI{Serial: "abc", Model: "SoftHSM v2", Manufacturer: "SoftHSM project", SlotID: slot(42), Type: "private"}, ""},
		{"pin-value and pool size", "pkcs11:token=t;object=o?pin-value=12%2634&pool-size=8",
			URI{Token: "t", Object: "o", PoolSize: 8}, "12&34"},
		{"empty path", "pkcs11:?module-path=/m.so", URI{ModulePath: "/m.so"}, ""},
		{"empty segments ignored", "pkcs11:token=t;;object=o;", URI{Token: "t", Object: "o"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseURI(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := *u
			got.pinValue = ""
			if fmt.Sprint(got.Token, got.Serial, got.Model, got.Manufacturer, got.Object, got.ID, got.Type, got.ModulePath, got.PINSource, got.PoolSize) !=
				fmt.Sprint(tc.want.Token, tc.want.Serial, tc.want.Model, tc.want.Manufacturer, tc.want.Object, tc.want.ID, tc.want.Type, tc.want.ModulePath, tc.want.PINSource, tc.want.PoolSize) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if (got.SlotID == nil) != (tc.want.SlotID == nil) || got.SlotID != nil && *got.SlotID != *tc.want.SlotID {
				t.Errorf("slot-id %v, want %v", got.SlotID, tc.want.SlotID)
			}
			if u.pinValue != tc.pin {
				t.Errorf("pin-value %q, want %q", u.pinValue, tc.pin)
			}
			// Round trip: String (PIN redacted) parses back to the same key.
			back, err := ParseURI(u.Public())
			if err != nil {
				t.Fatalf("canonical form %q does not parse: %v", u.Public(), err)
			}
			if back.Public() != u.Public() {
				t.Errorf("round trip %q -> %q", u.Public(), back.Public())
			}
		})
	}
}

func TestParseURIRejects(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"other scheme", "file:/k.pem", "scheme"},
		{"unknown path attribute (typo)", "pkcs11:token=t;objet=o", `"objet"`},
		{"unknown query attribute", "pkcs11:token=t?module=/m.so", `"module"`},
		{"module-name unsupported", "pkcs11:token=t?module-name=softhsm2", `"module-name"`},
		{"attribute without value", "pkcs11:token", "no '='"},
		{"repeated attribute", "pkcs11:object=a;object=b", "twice"},
		{"bad percent-encoding", "pkcs11:id=%zz", "percent"},
		{"bad slot-id", "pkcs11:slot-id=one", "slot-id"},
		{"negative slot-id", "pkcs11:slot-id=-1", "slot-id"},
		{"pool-size too small", "pkcs11:token=t?pool-size=1", "pool-size"},
		{"pool-size not a number", "pkcs11:token=t?pool-size=lots", "pool-size"},
		{"type cert", "pkcs11:token=t;type=cert", "type"},
		{"empty object", "pkcs11:object=", "empty"},
		{"both PIN sources", "pkcs11:token=t?pin-source=/p&pin-value=1", "not both"},
		{"fragment", "pkcs11:token=t#x", "fragment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseURI(tc.in)
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("ParseURI(%q) = %v, want ErrBadURI", tc.in, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestPINNeverShown checks every way a URI or a parse error is shown.
func TestPINNeverShown(t *testing.T) {
	const pin = "s3cr3t-PIN"
	cases := []struct{ name, in string }{
		{"pin-value", "pkcs11:token=t;object=o?pin-value=" + pin},
		{"pin-value percent-encoded", "pkcs11:token=t;object=o?pin-value=s3cr3t%2DPIN"},
		{"pin-value with bad attribute", "pkcs11:token=t;bogus=1?pin-value=" + pin},
		{"pin-value twice", "pkcs11:token=t?pin-value=" + pin + "&pin-value=" + pin},
		{"PIN typed without a name", "pkcs11:token=t?module-path=/m.so&" + pin},
		{"PIN after a fragment mark", "pkcs11:token=t?pin-value=ab#" + pin},
		{"pin-value in the path", "pkcs11:token=t;pin-value=" + pin},
		{"misspelt pin attribute", "pkcs11:token=t?pin-valeu=" + pin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseURI(tc.in)
			var shown []string
			if err != nil {
				shown = append(shown, err.Error())
			} else {
				shown = append(shown, u.String(), u.Public(), fmt.Sprintf("%v %+v %#v %s", u, u, u, u))
			}
			for _, s := range shown {
				if strings.Contains(s, pin) || strings.Contains(s, "s3cr3t") {
					t.Errorf("PIN shown in %q", s)
				}
			}
		})
	}
}

func TestPINSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	nl := write("nl", "1234\n")
	crlf := write("crlf", "1234\r\n")
	empty := write("empty", "\n")
	big := write("big", strings.Repeat("9", maxPINFileSize+1))
	cases := []struct {
		name    string
		uri     string
		getenv  func(string) string
		want    string
		wantErr string
	}{
		{"file: source, newline dropped", "pkcs11:token=t?pin-source=file:" + nl, nil, "1234", ""},
		{"file:/// source", "pkcs11:token=t?pin-source=file://" + crlf, nil, "1234", ""},
		{"plain path", "pkcs11:token=t?pin-source=" + nl, nil, "1234", ""},
		{"pin-value", "pkcs11:token=t?pin-value=77", nil, "77", ""},
		{"source beats environment", "pkcs11:token=t?pin-source=" + nl, env(map[string]string{EnvPIN: "env"}), "1234", ""},
		{"environment fallback", "pkcs11:token=t", env(map[string]string{EnvPIN: "env"}), "env", ""},
		{"no PIN anywhere", "pkcs11:token=t", nil, "", "no PIN"},
		{"empty file", "pkcs11:token=t?pin-source=" + empty, nil, "", "empty"},
		{"oversized file", "pkcs11:token=t?pin-source=" + big, nil, "", "larger"},
		{"remote source", "pkcs11:token=t?pin-source=https://example.invalid/pin", nil, "", "only file:"},
		{"relative file://", "pkcs11:token=t?pin-source=file://relative/pin", nil, "", "absolute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseURI(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			pin, err := u.PIN(tc.getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("PIN() = %q, %v; want error with %q", pin, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "9999") {
					t.Fatal("error shows file content")
				}
				return
			}
			if err != nil || pin != tc.want {
				t.Fatalf("PIN() = %q, %v; want %q", pin, err, tc.want)
			}
		})
	}
}

func TestModuleFallback(t *testing.T) {
	u, _ := ParseURI("pkcs11:token=t")
	if _, err := u.Module(nil); !errors.Is(err, ErrBadURI) {
		t.Fatalf("Module with no path and no environment: %v", err)
	}
	m, err := u.Module(func(k string) string { return map[string]string{EnvModule: "/env.so"}[k] })
	if err != nil || m != "/env.so" {
		t.Fatalf("Module from environment = %q, %v", m, err)
	}
	u2, _ := ParseURI("pkcs11:token=t?module-path=/uri.so")
	if m, _ := u2.Module(func(string) string { return "/env.so" }); m != "/uri.so" {
		t.Fatalf("module-path should beat the environment, got %q", m)
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("pkcs11:token=t;object=o;id=%01?module-path=/m.so&pin-value=1234")
	f.Add("pkcs11:serial=1;slot-id=3?pin-source=file:/p&pool-size=4")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		back, err := ParseURI(u.Public())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", u.Public(), s, err)
		}
		if back.Public() != u.Public() {
			t.Fatalf("round trip %q -> %q", u.Public(), back.Public())
		}
		if u.pinValue != "" && len(u.pinValue) > 3 && strings.Contains(u.String(), u.pinValue) {
			t.Fatalf("String shows pin-value: %q", u.String())
		}
	})
}
