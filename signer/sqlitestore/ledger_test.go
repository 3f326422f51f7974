package sqlitestore_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/testkeys"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/signertest"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

func TestLedgerStorage(t *testing.T) {
	ledgertest.TestStorage(t, func(t *testing.T) ledger.Storage {
		s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return sqlitestore.TxLedger(t, s)
	})
}

func TestLedgerStore(t *testing.T) {
	signertest.TestLedgerStore(t, func(t *testing.T, log *ledger.Log) signer.LedgerStore {
		return openWithLog(t, log)
	})
}

// BenchmarkCompletingSignatures runs the shared benchmark of a store with
// a log: signatures logged, requests completed, group-committed.
func BenchmarkCompletingSignatures(b *testing.B) {
	signertest.BenchmarkCompletingSignatures(b, func(b *testing.B, log *ledger.Log) signer.LedgerStore {
		return openWithLog(b, log)
	})
}

// BenchmarkLogAppend measures durable log appends through the store: one
// event per transaction, events from 64 concurrent writers group-committed,
// and 256 events per call.
func BenchmarkLogAppend(b *testing.B) {
	priv, err := filekey.NewPrivateKey(hsm.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	logSigner, err := filekey.Parse(testkeys.PEM(b, priv), "log key")
	if err != nil {
		b.Fatal(err)
	}
	open := func(b *testing.B) *sqlitestore.Store {
		l, err := ledger.New(ledger.Config{Origin: "quorate.bench/log", Signer: logSigner, Clock: time.Now})
		if err != nil {
			b.Fatal(err)
		}
		s, err := sqlitestore.Open(b.Context(), b.TempDir(), sqlitestore.Options{Ledger: l})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	event := func(i int) ledger.Event {
		return ledger.Event{Type: ledger.KeyRevoked, KeyID: fmt.Sprintf("%064x", i)}
	}
	b.Run("single", func(b *testing.B) {
		s := open(b)
		for i := 0; b.Loop(); i++ {
			if _, err := s.AppendEvents(b.Context(), event(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
	b.Run("concurrent-64", func(b *testing.B) {
		s := open(b)
		b.SetParallelism(32)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.AppendEvents(b.Context(), event(int(n.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
	b.Run("batch-256", func(b *testing.B) {
		s := open(b)
		evs := make([]ledger.Event, 256)
		for i := 0; b.Loop(); i++ {
			for j := range evs {
				evs[j] = event(i*256 + j)
			}
			if _, err := s.AppendEvents(b.Context(), evs...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "appends/s")
	})
}

// openWithLog opens a store in a fresh directory keeping log; the caller
// closes it.
func openWithLog(tb testing.TB, log *ledger.Log) *sqlitestore.Store {
	tb.Helper()
	s, err := sqlitestore.Open(tb.Context(), tb.TempDir(), sqlitestore.Options{Ledger: log})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
