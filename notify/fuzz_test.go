package notify_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/notify"
)

// FuzzParseConfig: any input is either accepted as a configuration whose
// endpoints are all checked, or refused with ErrConfig; never a panic, and
// the secret never appears in an error.
func FuzzParseConfig(f *testing.F) {
	dir := f.TempDir()
	writeFile(f, filepath.Join(dir, "s"), goodSecret)
	for _, seed := range []string{
		`{"endpoints":[{"name":"a","url":"https://x.example","secret":{"file":"s"}}]}`,
		`{"endpoints":[{"name":"a","url":"http://127.0.0.1:1/x","format":"teams","secret":{"env":"S"},"events":["request.reminder"],"reminders":{"*":{"after":"1h"}}}]}`,
		`{"endpoints":[{"name":"a","url":"http://[::1]/","secret":{"file":"s"},"gates":["g"]}]}`,
		`{}`, `[]`, `{"endpoints":null}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cfg string) {
		c, err := notify.ParseConfig([]byte(cfg), dir, func(string) string { return goodSecret })
		if err != nil {
			if !errors.Is(err, notify.ErrConfig) {
				t.Fatalf("error does not wrap ErrConfig: %v", err)
			}
			if strings.Contains(err.Error(), goodSecret[6:]) {
				t.Fatalf("error reveals the secret: %v", err)
			}
			return
		}
		for _, e := range c.Endpoints {
			if e.URL == nil || len(e.Secret) < notify.MinSecretBytes || (e.URL.Scheme != "https" && e.URL.Scheme != "http") {
				t.Fatalf("accepted an unchecked endpoint: %+v", e)
			}
		}
	})
}
