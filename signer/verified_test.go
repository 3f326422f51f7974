package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/quorate-dev/quorate/keys"
)

// TestVerifiedMemoBounded: a memo remembers at most verifiedMemoMax
// signatures, all memos of cached facts at most verifiedMemoTotal, and
// every entry given back when a memo is cleared or its facts dropped.
func TestVerifiedMemoBounded(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.FromCrypto(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	digest := []byte("digest")
	fill := func(m *verifiedMemo, n int) {
		for i := range n {
			m.add(k, digest, fmt.Appendf(nil, "sig-%d", i))
		}
	}
	var budget atomic.Int64

	var a verifiedMemo
	fill(&a, 3) // before its facts are cached: not counted yet
	if budget.Load() != 0 || a.len() != 3 {
		t.Fatalf("before attach: budget %d, memo %d", budget.Load(), a.len())
	}
	a.attach(&budget)
	fill(&a, 2*verifiedMemoMax)
	if a.len() != verifiedMemoMax || budget.Load() != verifiedMemoMax {
		t.Fatalf("memo holds %d (budget %d), want %d", a.len(), budget.Load(), verifiedMemoMax)
	}
	if !a.has(k, digest, []byte("sig-1")) || a.has(k, digest, []byte("sig-x")) || a.has(k, []byte("other"), []byte("sig-1")) {
		t.Fatal("has answers for other signatures or digests than those added")
	}
	a.clear()
	if a.len() != 0 || budget.Load() != 0 {
		t.Fatalf("after clear: memo %d, budget %d", a.len(), budget.Load())
	}

	memos := make([]verifiedMemo, 2*verifiedMemoTotal/verifiedMemoMax)
	for i := range memos {
		memos[i].attach(&budget)
		fill(&memos[i], verifiedMemoMax)
	}
	if budget.Load() != verifiedMemoTotal {
		t.Fatalf("budget %d after filling every memo, want the total %d", budget.Load(), verifiedMemoTotal)
	}
	for i := range memos {
		memos[i].detach()
		memos[i].add(k, digest, []byte("late")) // facts dropped: not counted
	}
	if budget.Load() != 0 {
		t.Fatalf("budget %d after every memo's facts were dropped, want 0", budget.Load())
	}
}
