package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/notify"
)

// A receiver verifies the signature over the raw body, within the
// tolerance window, then drops webhook-ids it has already processed.
func ExampleVerify() {
	secret, _ := notify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	body := []byte(`{"format":"quorate/notification/v1","id":"42","type":"request.opened"}`)
	sent := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	notify.SetHeaders(h, secret, "42", sent, body) // what the dispatcher sends

	seen := map[string]bool{}
	for _, arrival := range []time.Duration{time.Second, 2 * time.Second, 10 * time.Minute} {
		id, err := notify.Verify(secret, h, body, sent.Add(arrival), notify.DefaultTolerance)
		switch {
		case err != nil:
			fmt.Println("refused:", errors.Is(err, notify.ErrTimestamp))
		case seen[id]:
			fmt.Println("duplicate", id)
		default:
			seen[id] = true
			fmt.Println("process", id)
		}
	}
	// Output:
	// process 42
	// duplicate 42
	// refused: true
}

// verifyStdlib is the standard-library-only receiver of
// docs/notifications.md, kept here so the documented snippet is tested.
func verifyStdlib(secret []byte, h http.Header, body []byte, now time.Time) (string, error) {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	unix, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return "", errors.New("missing headers")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "", errors.New("timestamp outside tolerance")
	}
	mac := hmac.New(sha256.New, secret) // secret = base64-decoded part after "whsec_"
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		if v, b64, ok := strings.Cut(s, ","); ok && v == "v1" {
			if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
				return id, nil
			}
		}
	}
	return "", errors.New("bad signature")
}

// The documented standard-library receiver accepts what the dispatcher
// signs and refuses a replay.
func Example_standardLibraryReceiver() {
	secret, _ := notify.NewSecret()
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret.Text(), "whsec_"))
	body := []byte(`{"id":"7"}`)
	now := time.Now()
	h := http.Header{}
	notify.SetHeaders(h, secret, "7", now, body)
	fmt.Println(verifyStdlib(raw, h, body, now))
	fmt.Println(verifyStdlib(raw, h, body, now.Add(time.Hour)))
	// Output:
	// 7 <nil>
	//  timestamp outside tolerance
}
