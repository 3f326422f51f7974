//go:build cgo

package pkcs11

import (
	"runtime"
	"testing"

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
