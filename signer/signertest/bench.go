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

	"github.com/quorate-dev/quorate/ledger"
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
	if !createRequests(b, s, prefix, int64(requests), newRequest) {
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

// BenchmarkCompletingSignatures measures s.AddSignature as a coordinator
// with a transparency log sees it: [BenchmarkClients] concurrent callers,
// requests of 16 signatures (the requester's and 15 added) each completed
// by its 16th, 64 requests open at a time and each one's signatures spread
// over as many batches (every 64th signature goes to the same request),
// every signature and every completion logged. open returns an empty store
// keeping log; the benchmark closes it. It reports ops/s and the 50th and
// 99th percentile latencies.
func BenchmarkCompletingSignatures(b *testing.B, open func(b *testing.B, log *ledger.Log) signer.LedgerStore) {
	const (
		perRequest = 15 // added to the requester's
		window     = 64 // requests open at a time
	)
	l := newLog(b)
	s := open(b, l)
	defer s.Close()
	ctx := context.Background()
	prefix := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), b.N)
	// Op i signs request (i/(15*64))*64 + i%64 as identity (i/64)%15.
	request := func(i int64) int64 { return i/(perRequest*window)*window + i%window }
	n := int64(b.N)
	requests := n/(perRequest*window)*window + min(n%(perRequest*window), window)
	if !createRequests(b, s, prefix, requests, loggedRequest) {
		return
	}
	finish := finishAt(perRequest + 1)
	latencies := make([]time.Duration, b.N)
	var next, completed atomic.Int64
	b.SetParallelism(max(1, BenchmarkClients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			p := loggedPartial(fmt.Sprintf("signer-%d", i/window%perRequest), at(int(i)))
			p.Sig = make([]byte, 64)
			start := time.Now()
			r, err := s.AddSignature(ctx, fmt.Sprintf("%s-%d", prefix, request(i)), p, finish)
			if err != nil {
				b.Errorf("AddSignature: %v", err)
				return
			}
			latencies[i] = time.Since(start)
			if r.State == signer.Complete {
				completed.Add(1)
			}
		}
	})
	b.StopTimer()
	if want := int64(b.N / (perRequest * window) * window); completed.Load() < want {
		b.Errorf("%d requests completed, want at least %d", completed.Load(), want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100])/1e6, "p99-ms")
}

// createRequests stores requests prefix-0 to prefix-(n-1), made by mk with
// a realistic in-toto statement as payload, from [BenchmarkClients]
// goroutines; false if one failed (the benchmark is failed).
func createRequests(b *testing.B, s signer.Store, prefix string, n int64, mk func(id string, created time.Time) *signer.Request) bool {
	var (
		wg      sync.WaitGroup
		created atomic.Int64
	)
	for range BenchmarkClients {
		wg.Go(func() {
			for i := created.Add(1) - 1; i < n; i = created.Add(1) - 1 {
				r := mk(fmt.Sprintf("%s-%d", prefix, i), at(int(i)))
				r.Payload = make([]byte, 2048)
				if err := s.CreateRequest(context.Background(), r, signer.CreatedEvents(r)); err != nil {
					b.Errorf("CreateRequest: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return !b.Failed()
}
