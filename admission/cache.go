package admission

import (
	"container/list"
	"sync"
	"time"
)

// verdictCache keeps verifier decisions per (repository, digest, gate): at
// most size entries (least recently used evicted first), each until its
// expiry. It is safe for concurrent use.
//
// The key includes the repository, not only the digest: an approval's
// subject names the repository, and a verifier may refuse the same bytes
// under another name, so one must not answer for the other.
type verdictCache struct {
	mu    sync.Mutex
	size  int
	now   func() time.Time
	ll    *list.List // front = most recently used
	items map[cacheKey]*list.Element
}

type cacheKey struct{ repository, digest, gate string }

type cacheEntry struct {
	key     cacheKey
	d       Decision
	expires time.Time
}

func newVerdictCache(size int, now func() time.Time) *verdictCache {
	return &verdictCache{size: size, now: now, ll: list.New(), items: map[cacheKey]*list.Element{}}
}

// get returns the decision cached for k, if any and not expired.
func (c *verdictCache) get(k cacheKey) (Decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return Decision{}, false
	}
	ent := e.Value.(*cacheEntry)
	if !c.now().Before(ent.expires) {
		c.ll.Remove(e)
		delete(c.items, k)
		return Decision{}, false
	}
	c.ll.MoveToFront(e)
	return ent.d, true
}

// put caches d for k for ttl, never past d.ValidUntil when it is set.
func (c *verdictCache) put(k cacheKey, d Decision, ttl time.Duration) {
	expires := c.now().Add(ttl)
	if !d.ValidUntil.IsZero() && d.ValidUntil.Before(expires) {
		expires = d.ValidUntil
	}
	if !c.now().Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		e.Value = &cacheEntry{key: k, d: d, expires: expires}
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, d: d, expires: expires})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// len returns the number of entries held (expired ones included until
// they are looked up or evicted).
func (c *verdictCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// clear drops every entry.
func (c *verdictCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.items)
}
