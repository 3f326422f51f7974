package signertest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/signer"
)

// BenchmarkClients is how many goroutines [BenchmarkAddSignature] posts
// signatures from.
const BenchmarkClients = 64

// BenchmarkAddSignature measures s.AddSignature with [BenchmarkClients]
// concurrent callers spread over many pending requests, each call a new
// identity, as a coordinator receiving partial signatures does. It reports
// ops/s and the 50th and 99th percentile latencies. s must be empty; the
// benchmark does not close it.
func BenchmarkAddSignature(b *testing.B, s signer.Store) {
	// About 4 signatures a request, as with 3-of-5 policies.
	requests := b.N/4 + BenchmarkClients
	ctx := context.Background()
	// Each run of the benchmark function gets its own requests.
	prefix := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), b.N)
	var (
		wg      sync.WaitGroup
		created atomic.Int64
	)
	for range BenchmarkClients {
		wg.Go(func() {
			for i := created.Add(1) - 1; i < int64(requests); i = created.Add(1) - 1 {
				r := newRequest(fmt.Sprintf("%s-%d", prefix, i), at(int(i)))
				r.Payload = make([]byte, 2048) // a realistic in-toto statement
				if err := s.CreateRequest(ctx, r, signer.CreatedEvents(r)); err != nil {
					b.Errorf("CreateRequest: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	b.SetParallelism(max(1, BenchmarkClients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			p := partial(fmt.Sprintf("bench-%d", i), at(int(i)))
			p.Sig = make([]byte, 64)
			start := time.Now()
			_, err := s.AddSignature(ctx, fmt.Sprintf("%s-%d", prefix, i%int64(requests)), p, neverFinish)
			if err != nil {
				b.Errorf("AddSignature: %v", err)
				return
			}
			latencies[i] = time.Since(start)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100])/1e6, "p99-ms")
}
