// Command webhookrecv is a webhook receiver for measurements: it verifies
// each delivery (Standard Webhooks signature), de-duplicates by webhook-id
// and, on SIGINT/SIGTERM or after --idle without deliveries, prints the
// delivery latency (from the event's logged time to its receipt) p50/p99
// and the throughput of first receipts.
//
//	go run ./bench/webhookrecv --listen 127.0.0.1:9099 --secret-file hook.whsec
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9099", "address")
	secretFile := flag.String("secret-file", "", "file holding the whsec_ secret")
	idle := flag.Duration("idle", 0, "stop after this long without a new delivery once one arrived (0: on a signal only)")
	flag.Parse()
	raw, err := os.ReadFile(*secretFile)
	if err != nil {
		log.Fatal(err)
	}
	secret, err := notify.ParseSecret(strings.TrimSpace(string(raw)))
	if err != nil {
		log.Fatal(err)
	}
	var (
		mu          sync.Mutex
		seen        = map[string]bool{}
		lat         []time.Duration
		dups, bad   int
		first, last time.Time
	)
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		now := time.Now()
		id, err := notify.Verify(secret, r.Header, body, now, 0)
		var m notify.Message
		if err == nil {
			err = json.Unmarshal(body, &m)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad++
			http.Error(w, "bad delivery", http.StatusBadRequest)
			return
		}
		if seen[id] {
			dups++
			return
		}
		seen[id] = true
		if t, err := time.Parse(ledger.TimeLayout, m.Time); err == nil && m.Type != notify.ReminderType {
			lat = append(lat, now.Sub(t))
		}
		if first.IsZero() {
			first = now
		}
		last = now
	})
	go func() { log.Fatal(http.ListenAndServe(*listen, nil)) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	tick := time.NewTicker(100 * time.Millisecond)
wait:
	for {
		select {
		case <-sig:
			break wait
		case <-tick.C:
			mu.Lock()
			done := *idle > 0 && !last.IsZero() && time.Since(last) > *idle
			mu.Unlock()
			if done {
				break wait
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	span := last.Sub(first).Seconds()
	rate := 0.0
	if span > 0 {
		rate = float64(len(seen)) / span
	}
	fmt.Printf("deliveries %d (duplicates %d, refused %d); latency event->receipt p50 %s p99 %s max %s; throughput %.0f/s over %.1fs\n",
		len(seen), dups, bad, q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond), rate, span)
}
