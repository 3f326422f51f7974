package storesql

import (
	"fmt"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/signer"
)

func cachedReq(id string, sigs int, updated time.Time) *signer.Request {
	r := &signer.Request{ID: id, State: signer.Pending, Updated: updated}
	for i := range sigs {
		r.Signatures = append(r.Signatures, signer.Partial{KeyID: fmt.Sprintf("k%d", i), Identity: fmt.Sprintf("id%d", i), Sig: []byte{byte(i)}, LogIndex: -1})
	}
	return r
}

// TestRequestCacheUsedOnlyForTheRowItWasCommittedFor: the cached
// signatures are used only while the request row shows the state and
// signature count the batch committed; everything else reads the rows.
// (Its update time is not compared: a signature's batch does not write
// the row, and every other change of it changes its state or its count.)
func TestRequestCacheUsedOnlyForTheRowItWasCommittedFor(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 5).UTC()
	cases := []struct {
		name  string
		row   func(r *signer.Request) // the row as the next batch reads it
		count int64
		hit   bool
	}{
		{"row unchanged", func(*signer.Request) {}, 3, true},
		{"another replica added a signature", func(*signer.Request) {}, 4, false},
		{"a signature row deleted", func(*signer.Request) {}, 2, false},
		{"cancelled", func(r *signer.Request) { r.State = signer.Cancelled }, 3, false},
		{"another request", func(r *signer.Request) { r.ID = "other" }, 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newRequestCache()
			c.newBatch()
			c.stage(cachedReq("r1", 3, t0))
			c.commit(map[[2]string]int64{{"r1", "id2"}: 42})
			row := &signer.Request{ID: "r1", State: signer.Pending, Updated: t0}
			tc.row(row)
			sigs, hit := c.signatures(row, tc.count)
			if hit != tc.hit {
				t.Fatalf("hit = %v, want %v", hit, tc.hit)
			}
			if hit && (len(sigs) != 3 || sigs[2].LogIndex != 42 || sigs[0].LogIndex != -1) {
				t.Errorf("cached signatures %+v: want 3, the last logged at 42", sigs)
			}
		})
	}
}

// commitBatch runs one batch that leaves rs as they are.
func (c *requestCache) commitBatch(rs ...*signer.Request) {
	c.newBatch()
	for _, r := range rs {
		c.stage(r)
	}
	c.commit(nil)
}

func TestRequestCacheForgets(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0).UTC()
	row := func(id string) *signer.Request { return &signer.Request{ID: id, State: signer.Pending, Updated: t0} }
	t.Run("a batch with a write it does not track", func(t *testing.T) {
		c := newRequestCache()
		c.commitBatch(cachedReq("r1", 1, t0))
		c.newBatch()
		c.stage(cachedReq("r1", 1, t0))
		c.untracked = true
		c.commit(nil)
		if _, hit := c.signatures(row("r1"), 1); hit {
			t.Error("cache used after a batch with an untracked write")
		}
	})
	t.Run("a completed request", func(t *testing.T) {
		c := newRequestCache()
		c.commitBatch(cachedReq("r1", 2, t0))
		done := cachedReq("r1", 2, t0)
		done.State = signer.Complete
		c.commitBatch(done)
		if len(c.committed) != 0 {
			t.Errorf("%d requests cached after completion", len(c.committed))
		}
	})
	t.Run("a failed batch", func(t *testing.T) {
		c := newRequestCache()
		c.commitBatch(cachedReq("r1", 1, t0))
		c.newBatch()
		c.stage(cachedReq("r2", 1, t0))
		c.reset()
		c.commit(nil) // nothing staged survives a reset
		if len(c.committed) != 0 {
			t.Errorf("%d requests cached after a failed batch", len(c.committed))
		}
	})
	t.Run("staged but not committed", func(t *testing.T) {
		c := newRequestCache()
		c.newBatch()
		c.stage(cachedReq("r1", 1, t0))
		if _, hit := c.signatures(row("r1"), 1); hit {
			t.Error("a staged request was used before its batch committed")
		}
	})
	t.Run("bounded", func(t *testing.T) {
		c := newRequestCache()
		for i := range 3 * maxCachedRequests {
			c.commitBatch(cachedReq(fmt.Sprint("r", i), 1, t0))
		}
		if len(c.committed) > maxCachedRequests {
			t.Errorf("%d requests cached, at most %d", len(c.committed), maxCachedRequests)
		}
		c.reset()
		per := 3 * maxCachedSignatures / maxCachedRequests
		for i := range maxCachedRequests {
			c.commitBatch(cachedReq(fmt.Sprint("big", i), per, t0))
		}
		n := 0
		for _, e := range c.committed {
			n += len(e.sigs)
		}
		if n > maxCachedSignatures || n != c.sigs {
			t.Errorf("%d signatures cached (counted %d), at most %d", n, c.sigs, maxCachedSignatures)
		}
	})
}
