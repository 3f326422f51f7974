// Package syncbuf is the buffer tests capture a child process's output in:
// safe for the goroutine os/exec starts to copy a pipe (or several) and for
// the test reading it while the child runs, and bounded, so a chatty child
// cannot fill memory.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent writers and readers. The
// zero value keeps everything written; with Max > 0, writes arriving once
// it holds Max bytes or more are dropped (and reported as written, so the
// child is never blocked or failed by its log).
type Buffer struct {
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p unless the buffer is full.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.buf.Len() >= b.Max {
		return len(p), nil
	}
	return b.buf.Write(p)
}

// String returns what was kept so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor waits until the buffer contains want, failing tb after timeout
// with what the buffer holds: a child's output reaches it through a pipe,
// so a line written before an HTTP answer may arrive after it.
func (b *Buffer) WaitFor(tb testing.TB, want string, timeout time.Duration) {
	tb.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(b.String(), want); {
		if time.Now().After(deadline) {
			tb.Fatalf("the child process did not log %q within %s:\n%s", want, timeout, b)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
