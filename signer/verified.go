package signer

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/quorate-dev/quorate/keys"
)

// Bounds of the memos of verified signatures: per request, and over all
// the requests a coordinator holds facts of (about 60 bytes an entry).
// Beyond them, the composite check verifies the rest again.
const (
	verifiedMemoMax   = 64
	verifiedMemoTotal = 1 << 16
)

// verifiedMemo remembers the partial signatures of one request that
// verified on arrival — by key identity, PAE digest and signature bytes —
// so that the check of the composite built from them (a verifier's full
// check, fail-closed) need not spend a second verification on each. A
// signature changed in the store since has other bytes and is verified
// again. It lives in the request's cached facts and is emptied once the
// request's composite is built or the facts are dropped; budget, the
// coordinator's count of entries over the memos of the facts it caches,
// bounds them all.
type verifiedMemo struct {
	mu     sync.Mutex
	m      map[verifiedKey]struct{}
	budget *atomic.Int64
}

// verifiedKey is the SHA-256 of a key identity, a digest and a signature
// (32 bytes an entry instead of ~150).
type verifiedKey [sha256.Size]byte

func keyOf(k *keys.PublicKey, digest, sig []byte) verifiedKey {
	h := sha256.New()
	id := k.Identity()
	h.Write(id[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(digest)))
	h.Write(n[:])
	h.Write(digest)
	h.Write(sig)
	var out verifiedKey
	h.Sum(out[:0])
	return out
}

func (m *verifiedMemo) add(k *keys.PublicKey, digest, sig []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := keyOf(k, digest, sig)
	if len(m.m) >= verifiedMemoMax {
		return
	}
	if _, ok := m.m[key]; ok {
		return
	}
	if m.budget != nil && m.budget.Add(1) > verifiedMemoTotal {
		m.budget.Add(-1)
		return
	}
	if m.m == nil {
		m.m = map[verifiedKey]struct{}{}
	}
	m.m[key] = struct{}{}
}

// attach makes the memo count against budget from now on (its facts are
// now cached), forgetting what it holds if budget has no room for it.
func (m *verifiedMemo) attach(budget *atomic.Int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budget = budget
	if budget.Add(int64(len(m.m))) > verifiedMemoTotal {
		budget.Add(-int64(len(m.m)))
		m.m = nil
	}
}

// detach forgets every signature and stops counting against the budget
// (the facts were dropped from the cache).
func (m *verifiedMemo) detach() {
	m.clear()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budget = nil
}

// has reports whether k's signature sig over digest verified on arrival.
func (m *verifiedMemo) has(k *keys.PublicKey, digest, sig []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.m[keyOf(k, digest, sig)]
	return ok
}

// len returns the number of signatures remembered.
func (m *verifiedMemo) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// clear forgets every signature, giving their entries back to the budget.
func (m *verifiedMemo) clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.budget != nil {
		m.budget.Add(-int64(len(m.m)))
	}
	m.m = nil
}
