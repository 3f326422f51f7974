package signer

import (
	"sync"
	"sync/atomic"

	"github.com/quorate-dev/quorate/keys"
)

// verifiedMemoMax bounds the signatures one request's memo remembers;
// beyond it, the composite check verifies the rest again.
const verifiedMemoMax = 256

// verifiedMemo remembers the partial signatures of one request that
// verified on arrival — by key identity, PAE digest and signature bytes —
// so that the check of the composite built from them (a verifier's full
// check, fail-closed) need not spend a second verification on each. A
// signature changed in the store since has other bytes and is verified
// again. It lives in the request's cached facts (bounded with them) and is
// emptied once the request's composite is built.
type verifiedMemo struct {
	m sync.Map // verifiedKey -> struct{}
	n atomic.Int32
}

type verifiedKey struct {
	identity    keys.Identity
	digest, sig string
}

func (m *verifiedMemo) add(k *keys.PublicKey, digest, sig []byte) {
	if m.n.Add(1) > verifiedMemoMax {
		m.n.Add(-1)
		return
	}
	m.m.Store(verifiedKey{k.Identity(), string(digest), string(sig)}, struct{}{})
}

// has reports whether k's signature sig over digest verified on arrival.
func (m *verifiedMemo) has(k *keys.PublicKey, digest, sig []byte) bool {
	_, ok := m.m.Load(verifiedKey{k.Identity(), string(digest), string(sig)})
	return ok
}

// clear forgets every signature.
func (m *verifiedMemo) clear() {
	m.m.Clear()
	m.n.Store(0)
}
