package notify_test

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/notify"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// The Standard Webhooks reference libraries' test vector: our signature
// is what their verifiers accept.
func TestStandardWebhooksVector(t *testing.T) {
	secret, err := notify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got := notify.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body); got != want {
		t.Fatalf("Sign = %s; want %s", got, want)
	}
	h := http.Header{}
	h.Set(notify.HeaderID, "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set(notify.HeaderTimestamp, "1614265330")
	h.Set(notify.HeaderSignature, "v1,bm9ldHUjKzFob2VudXRob2VodWUzMjRvdWVvdW9ldQo= "+want)
	if id, err := notify.Verify(secret, h, body, ts.Add(time.Minute), 0); err != nil || id != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Fatalf("Verify = %q, %v", id, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	secret, _ := notify.NewSecret()
	other, _ := notify.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"7"}`)
	signed := func(ts time.Time) http.Header {
		h := http.Header{}
		notify.SetHeaders(h, secret, "7", ts, body)
		return h
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		secret notify.Secret
		want   error
	}{
		{"ReplayOfAnOldTimestamp", signed(now.Add(-6 * time.Minute)), body, secret, notify.ErrTimestamp},
		{"TimestampFromTheFuture", signed(now.Add(6 * time.Minute)), body, secret, notify.ErrTimestamp},
		{"TamperedBody", signed(now), []byte(`{"id":"8"}`), secret, notify.ErrSignature},
		{"WrongSecret", signed(now), body, other, notify.ErrSignature},
		{"ChangedID", func() http.Header { h := signed(now); h.Set(notify.HeaderID, "8"); return h }(), body, secret, notify.ErrSignature},
		{"ShiftedTimestampInWindow", func() http.Header { h := signed(now); h.Set(notify.HeaderTimestamp, "1800000001"); return h }(), body, secret, notify.ErrSignature},
		{"UnknownVersionOnly", func() http.Header {
			h := signed(now)
			h.Set(notify.HeaderSignature, "v2,"+strings.TrimPrefix(h.Get(notify.HeaderSignature), "v1,"))
			return h
		}(), body, secret, notify.ErrSignature},
		{"MissingSignature", func() http.Header { h := signed(now); h.Del(notify.HeaderSignature); return h }(), body, secret, notify.ErrNoSignature},
		{"NonNumericTimestamp", func() http.Header { h := signed(now); h.Set(notify.HeaderTimestamp, "soon"); return h }(), body, secret, notify.ErrNoSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notify.Verify(tc.secret, tc.header, tc.body, now, notify.DefaultTolerance)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v; want %v", err, tc.want)
			}
		})
	}
	if _, err := notify.Verify(secret, signed(now.Add(-4*time.Minute)), body, now, notify.DefaultTolerance); err != nil {
		t.Fatalf("inside the window: %v", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s, _ := notify.NewSecret()
	for _, out := range []string{s.String(), s.GoString()} {
		if strings.Contains(out, s.Text()[6:12]) {
			t.Fatalf("secret printed: %s", out)
		}
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ="} {
		if _, err := notify.ParseSecret(bad); err == nil || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Fatalf("ParseSecret(%q) = %v", bad, err)
		}
	}
}
