package storesql

import (
	"bytes"
	"slices"

	"github.com/quorate-dev/quorate/signer"
)

// Bounds of a [requestCache]: pending requests, and signatures over them
// (about 300 bytes each).
const (
	maxCachedRequests   = 4096
	maxCachedSignatures = 1 << 15
)

// requestCache keeps, across a [Batcher]'s batches, the signatures of the
// pending requests its batches signed, as committed — so that the next
// batch signing one of them need not read and decode every signature row
// again (with 16 signers, a request's rows were read 136 times).
//
// What is cached is only a shortcut for decisions the database backs, and
// it is never trusted blindly:
//   - An entry is used only when the request row the batch just read and
//     locked has the cached state, last update time and number of
//     signature rows: anything that adds a signature (another replica, a
//     write outside the batch) or changes the request's state makes the
//     batch read the rows.
//   - The composite is built from what is stored: a signature that would
//     complete a request from cached rows makes the batch read the rows
//     again, and a difference (a row altered in place behind the
//     coordinator's back) decides again from the rows read.
//   - The unique index on (request, key identity) still refuses a
//     duplicate the cache would have missed.
//
// Only the writer goroutine uses it. Entries are staged by the batch and
// become the cache at its COMMIT; a failed batch forgets everything.
type requestCache struct {
	committed map[string]*cachedRequest
	sigs      int                        // signatures in committed
	staged    map[string]*signer.Request // this batch's requests as it leaves them
	untracked bool                       // a write this batch does not track ran
}

// cachedRequest is what a request cache keeps of a request: its
// signatures as committed (log indexes included) and what the row must
// show for them to be used — not the request (its payload may be large).
type cachedRequest struct {
	sigs  []signer.Partial
	state signer.State
}

func newRequestCache() *requestCache {
	return &requestCache{committed: map[string]*cachedRequest{}}
}

// newBatch starts a batch.
func (c *requestCache) newBatch() {
	clear(c.staged)
	c.untracked = false
}

// signatures returns the cached signatures of r, the request row just read
// and locked with count signature rows, if the cache holds them for this
// very state of the row.
func (c *requestCache) signatures(r *signer.Request, count int64) ([]signer.Partial, bool) {
	e := c.committed[r.ID]
	if e == nil || int64(len(e.sigs)) != count || e.state != r.State {
		return nil, false
	}
	return slices.Clone(e.sigs), true
}

// stage records r as the batch leaves it.
func (c *requestCache) stage(r *signer.Request) {
	if c.staged == nil {
		c.staged = map[string]*signer.Request{}
	}
	c.staged[r.ID] = r
}

// commit makes the staged requests the cache, each signature given the log
// index the batch assigned it (logged, by request ID and key identity).
func (c *requestCache) commit(logged map[[2]string]int64) {
	if c.untracked {
		// A write the batch does not track may have changed any of them.
		for id := range c.staged {
			c.drop(id)
		}
		return
	}
	for id, r := range c.staged {
		c.drop(id)
		if r.State != signer.Pending {
			continue
		}
		for i := range r.Signatures {
			if x, ok := logged[[2]string{id, r.Signatures[i].Identity}]; ok && r.Signatures[i].LogIndex < 0 {
				r.Signatures[i].LogIndex = x
			}
		}
		for k := range c.committed { // full: drop arbitrary ones
			if len(c.committed) < maxCachedRequests && c.sigs+len(r.Signatures) <= maxCachedSignatures {
				break
			}
			c.drop(k)
		}
		if len(r.Signatures) > maxCachedSignatures {
			continue
		}
		c.committed[id] = &cachedRequest{sigs: r.Signatures, state: r.State}
		c.sigs += len(r.Signatures)
	}
}

func (c *requestCache) drop(id string) {
	if e := c.committed[id]; e != nil {
		c.sigs -= len(e.sigs)
		delete(c.committed, id)
	}
}

// reset forgets everything (the batch failed).
func (c *requestCache) reset() {
	clear(c.committed)
	clear(c.staged)
	c.sigs = 0
}

// sameSignatures reports whether a and b are the same signatures, as
// stored, in the same order.
func sameSignatures(a, b []signer.Partial) bool {
	return slices.EqualFunc(a, b, func(x, y signer.Partial) bool {
		return x.KeyID == y.KeyID && x.Identity == y.Identity && x.Role == y.Role && bytes.Equal(x.Sig, y.Sig) &&
			x.Received.Equal(y.Received) && x.LogIndex == y.LogIndex
	})
}
