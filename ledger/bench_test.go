package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
)

// Benchmarks only: none of this runs without -bench.

func benchEvents(n int) []ledger.Event {
	evs := make([]ledger.Event, n)
	for i := range evs {
		evs[i] = ledger.Event{Type: ledger.SignatureAccepted, RequestID: fmt.Sprintf("req-%d", i), KeyID: hexC, PayloadSHA256: hexA, EnvelopeSHA256: hexB}
	}
	return evs
}

func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f := newFixture(b, hsm.Ed25519)
			evs := benchEvents(batch)
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.log.Append(ctx, f.store, evs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

const bigSize = 1_000_000

var (
	bigOnce sync.Once
	bigLog  *fixture
	bigRaw  [][]byte
)

// big returns a log of 10^6 entries, built once per benchmark process.
func big(b *testing.B) *fixture {
	b.Helper()
	bigOnce.Do(func() {
		f := newFixture(b, hsm.ECDSAP256)
		ctx := context.Background()
		evs := benchEvents(1000)
		for range bigSize / len(evs) {
			if _, err := f.log.Append(ctx, f.store, evs...); err != nil {
				b.Fatal(err)
			}
		}
		bigLog, bigRaw = f, f.raw(b)
	})
	if bigLog == nil {
		b.Fatal("building the 10^6-entry log failed")
	}
	return bigLog
}

func BenchmarkInclusionProof1M(b *testing.B) {
	f := big(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var bytes int
	for b.Loop() {
		p, err := ledger.InclusionProof(ctx, f.store, rng.Int64N(bigSize), bigSize)
		if err != nil {
			b.Fatal(err)
		}
		bytes = len(p) * 32
	}
	b.ReportMetric(float64(bytes), "proof-bytes")
}

func BenchmarkVerifyInclusion1M(b *testing.B) {
	f := big(b)
	ctx := context.Background()
	root, _ := ledger.TreeHash(ctx, f.store, bigSize)
	const idx = 765_432
	p, err := ledger.InclusionProof(ctx, f.store, idx, bigSize)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := ledger.VerifyInclusion(p, idx, bigSize, root, bigRaw[idx]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsistencyProof1M(b *testing.B) {
	f := big(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	var bytes int
	for b.Loop() {
		p, err := ledger.ConsistencyProof(ctx, f.store, 1+rng.Int64N(bigSize-1), bigSize)
		if err != nil {
			b.Fatal(err)
		}
		bytes = len(p) * 32
	}
	b.ReportMetric(float64(bytes), "proof-bytes")
}

func BenchmarkSign1M(b *testing.B) {
	f := big(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := f.log.Sign(ctx, f.store); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBundle1M(b *testing.B) {
	f := big(b)
	ctx := context.Background()
	cp := f.sign(b)
	bundle, err := ledger.NewBundle(ctx, f.store, cp, 999_995, 999_996, 999_997, 999_998, 999_999)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := bundle.Marshal()
	key := f.signer.Public()
	for b.Loop() {
		pb, err := ledger.ParseBundle(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ledger.VerifyBundle(pb, key, testOrigin); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bundle-bytes")
}

func BenchmarkAudit1M(b *testing.B) {
	f := big(b)
	cp := f.sign(b)
	cfg := ledger.AuditConfig{Origin: testOrigin, LogKey: f.signer.Public()}
	for b.Loop() {
		if _, err := ledger.Audit(context.Background(), cfg, bigRaw, cp.Note); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*bigSize)/b.Elapsed().Seconds(), "entries/s")
}
