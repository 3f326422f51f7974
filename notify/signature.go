package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (https://www.standardwebhooks.com) headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts the text form of a [Secret].
const SecretPrefix = "whsec_"

// Secret lengths, as the Standard Webhooks specification recommends.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock before [Verify] refuses it.
const DefaultTolerance = 5 * time.Minute

// Secret is an endpoint's HMAC-SHA256 key. Its text form is "whsec_"
// followed by the standard base64 of the key bytes. String never reveals it.
type Secret []byte

// ParseSecret parses the text form "whsec_<base64>" of a secret of 24 to 64
// bytes. Errors never quote the text.
func ParseSecret(text string) (Secret, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(text), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("not of the form %s<base64>", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("the part after %s is not standard base64", SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("the key is %d bytes (want %d to %d)", len(key), MinSecretBytes, MaxSecretBytes)
	}
	return Secret(key), nil
}

// NewSecret returns a random 32-byte secret.
func NewSecret() (Secret, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating a webhook secret: %w", err)
	}
	return Secret(key), nil
}

// Text returns the secret's text form, for writing it to a file once.
func (s Secret) Text() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s) }

// String hides the secret (so %v in a log line cannot leak it).
func (s Secret) String() string { return "whsec_(redacted)" }

// GoString hides the secret.
func (s Secret) GoString() string { return s.String() }

// Sign returns the webhook-signature header value for a message: "v1,"
// followed by the base64 HMAC-SHA256, under the secret, of
// "<id>.<timestamp as Unix seconds>.<body>".
func Sign(secret Secret, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(secret, id, ts.Unix(), body))
}

func mac(secret Secret, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// SetHeaders sets the three Standard Webhooks headers on h.
func SetHeaders(h http.Header, secret Secret, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, id, ts, body))
}

// Verification errors, for errors.Is.
var (
	// ErrNoSignature: a header is missing or malformed.
	ErrNoSignature = errors.New("webhook: missing or malformed signature headers")
	// ErrTimestamp: the timestamp is outside the tolerance (a replay or a
	// badly skewed clock).
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	// ErrSignature: no v1 signature matches.
	ErrSignature = errors.New("webhook: no signature matches")
)

// Verify checks a delivery as a receiver: the webhook-id, webhook-timestamp
// and webhook-signature headers must be present, the timestamp within
// tolerance of now (in either direction; tolerance <= 0 means
// [DefaultTolerance]), and one of the space-separated "v1,<base64>"
// signatures must be the HMAC-SHA256 of "<id>.<timestamp>.<body>" under the
// secret (compared in constant time). It returns the webhook-id, which the
// receiver must use to drop a delivery it has already processed: the
// timestamp window bounds how long it must remember ids.
func Verify(secret Secret, h http.Header, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return "", fmt.Errorf("%w: want %s, %s and %s", ErrNoSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || unix < 0 {
		return "", fmt.Errorf("%w: %s is not Unix seconds", ErrNoSignature, HeaderTimestamp)
	}
	ts := time.Unix(unix, 0)
	if ts.Before(now.Add(-tolerance)) || ts.After(now.Add(tolerance)) {
		return "", fmt.Errorf("%w: %s is %s from now (tolerance %s)", ErrTimestamp, ts.UTC().Format(time.RFC3339), now.Sub(ts).Round(time.Second), tolerance)
	}
	want := mac(secret, id, unix, body)
	for _, sig := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return id, nil
		}
	}
	return "", ErrSignature
}
