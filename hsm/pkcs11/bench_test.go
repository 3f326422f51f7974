//go:build cgo

package pkcs11

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
)

// BenchmarkSign compares quorate's Signer with calling crypto11's signer
// directly (SHA-256 and crypto11 Sign, which is all keys.PublicKey.Sign
// does) on the same SoftHSM2 P-256 key, serially and from 4 goroutines.
func BenchmarkSign(b *testing.B) {
	f := newToken(b)
	be, _ := newBackend(b)
	s := generatedSigner(b, be, f, "bench", hsm.ECDSAP256).(*Signer)
	direct := s.key.Load().key
	pub := s.Public()
	msg := make([]byte, 512)

	quorate := func() error { _, err := s.Sign(ctx, msg); return err }
	crypto11 := func() error { _, err := pub.Sign(direct, msg); return err }
	impls := []struct {
		name string
		sign func() error
	}{{"crypto11", crypto11}, {"quorate", quorate}}

	for _, impl := range impls {
		b.Run("mode=serial/impl="+impl.name, func(b *testing.B) {
			for b.Loop() {
				if err := impl.sign(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, impl := range impls {
		b.Run("mode=parallel4/impl="+impl.name, func(b *testing.B) {
			// RunParallel starts SetParallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, 4/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := impl.sign(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSignOverhead interleaves the two calls of BenchmarkSign, one of
// each per iteration, and reports the ratio of the time spent in each. On a
// shared machine whose load drifts, this ratio is steadier than comparing
// two separate benchmark runs.
func BenchmarkSignOverhead(b *testing.B) {
	f := newToken(b)
	be, _ := newBackend(b)
	s := generatedSigner(b, be, f, "bench", hsm.ECDSAP256).(*Signer)
	direct := s.key.Load().key
	pub := s.Public()
	msg := make([]byte, 512)

	pair := func(tq, tc *time.Duration) error {
		t0 := time.Now()
		if _, err := pub.Sign(direct, msg); err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := s.Sign(ctx, msg); err != nil {
			return err
		}
		*tc += t1.Sub(t0)
		*tq += time.Since(t1)
		return nil
	}
	b.Run("mode=serial", func(b *testing.B) {
		var tq, tc time.Duration
		for b.Loop() {
			if err := pair(&tq, &tc); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(tq)/float64(tc), "quorate/crypto11")
	})
	b.Run("mode=parallel4", func(b *testing.B) {
		var mu sync.Mutex
		var tq, tc time.Duration
		b.SetParallelism(max(1, 4/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			var q, c time.Duration
			for pb.Next() {
				if err := pair(&q, &c); err != nil {
					b.Error(err)
					return
				}
			}
			mu.Lock()
			tq, tc = tq+q, tc+c
			mu.Unlock()
		})
		b.ReportMetric(float64(tq)/float64(tc), "quorate/crypto11")
	})
}
