package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// The sink counts a delivery once, whatever its retries, refuses one
// whose signature does not verify, and writes a configuration serve
// accepts.
func TestWebhookSink(t *testing.T) {
	dir := t.TempDir()
	s, cfgFile, err := startWebhookSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	raw, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := notify.ParseConfig(raw, dir, nil)
	if err != nil {
		t.Fatalf("serve would refuse the configuration: %v", err)
	}
	url := cfg.Endpoints[0].URL.String()
	start := time.Now()
	post := func(id string, secret notify.Secret) int {
		t.Helper()
		body, _ := json.Marshal(notify.Message{Format: notify.MessageFormat, ID: id, Type: "signature.accepted", Time: time.Now().Add(-time.Second).UTC().Format(ledger.TimeLayout)})
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		notify.SetHeaders(req.Header, secret, id, time.Now(), body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	other, _ := notify.NewSecret()
	for _, tc := range []struct {
		id     string
		secret notify.Secret
		want   int
	}{
		{"msg_1", s.secret, http.StatusNoContent},
		{"msg_1", s.secret, http.StatusNoContent}, // a retry
		{"msg_2", s.secret, http.StatusNoContent},
		{"msg_3", other, http.StatusBadRequest},
	} {
		if got := post(tc.id, tc.secret); got != tc.want {
			t.Fatalf("%s: status %d, want %d", tc.id, got, tc.want)
		}
	}
	s.Drain(2, time.Second, 5*time.Second)
	r := s.result(start, time.Now(), 0, 2)
	if r.Deliveries != 2 || r.Expected != 2 || r.Duplicates != 1 || r.Refused != 1 {
		t.Fatalf("result %+v; want 2 deliveries, 1 duplicate, 1 refused", r)
	}
	if r.DeliveryP50ms < 1000 {
		t.Fatalf("latency p50 %.0f ms; the events were logged a second before", r.DeliveryP50ms)
	}
}
