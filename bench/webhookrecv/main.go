// Command webhookrecv is a webhook receiver for measurements: it verifies
// each delivery (Standard Webhooks signature), de-duplicates by webhook-id
// and, on SIGINT/SIGTERM or after --idle without deliveries, prints the
// delivery latency (from the event's logged time to its receipt) p50/p99
// and the throughput of first receipts. bench/load --webhooks runs the
// same endpoint (bench/internal/hooksink) in the load generator.
//
//	go run ./bench/webhookrecv --listen 127.0.0.1:9099 --secret-file hook.whsec
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quorate-dev/quorate/bench/internal/hooksink"
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
	sink := hooksink.New(secret)
	srv := &http.Server{Addr: *listen, Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	go func() { log.Fatal(srv.ListenAndServe()) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	tick := time.NewTicker(100 * time.Millisecond)
wait:
	for {
		select {
		case <-sig:
			break wait
		case <-tick.C:
			if *idle > 0 && sink.Idle(*idle) {
				break wait
			}
		}
	}
	st := sink.Stats()
	span := st.Last.Sub(st.First).Seconds()
	rate := 0.0
	if span > 0 {
		rate = float64(st.Deliveries) / span
	}
	fmt.Printf("deliveries %d (duplicates %d, refused %d); latency event->receipt p50 %s p99 %s max %s; throughput %.0f/s over %.1fs\n",
		st.Deliveries, st.Duplicates, st.Refused, st.P50.Round(time.Millisecond), st.P99.Round(time.Millisecond), st.Max.Round(time.Millisecond), rate, span)
}
