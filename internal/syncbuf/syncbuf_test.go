package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/internal/syncbuf"
)

// TestConcurrentWriters runs under -race: two writers (a child's stdout and
// stderr pipes) and a reader at once.
func TestConcurrentWriters(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "w%d line %d\n", w, i)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = b.String()
		}
	})
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 200 {
		t.Fatalf("kept %d lines, want 200", n)
	}
}

func TestMax(t *testing.T) {
	cases := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"unbounded", 0, []string{"abc", "def"}, "abcdef"},
		{"under the bound", 10, []string{"abc", "def"}, "abcdef"},
		{"the write reaching the bound is kept whole", 4, []string{"abc", "def", "ghi"}, "abcdef"},
		{"writes after the bound are dropped", 3, []string{"abc", "def"}, "abc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &syncbuf.Buffer{Max: tc.max}
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v: a full buffer must not fail the writer", w, n, err)
				}
			}
			if got := b.String(); got != tc.want {
				t.Fatalf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	var b syncbuf.Buffer
	go func() {
		time.Sleep(50 * time.Millisecond)
		fmt.Fprintln(&b, "coordinator listening")
	}()
	b.WaitFor(t, "listening", 10*time.Second)
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestWaitForTimesOut(t *testing.T) {
	b := &syncbuf.Buffer{}
	fmt.Fprintln(b, "something else")
	r := &fatalRecorder{TB: t}
	b.WaitFor(r, "never", 100*time.Millisecond)
	if !strings.Contains(r.msg, `did not log "never"`) || !strings.Contains(r.msg, "something else") {
		t.Fatalf("timeout message %q does not say what was waited for and what was logged", r.msg)
	}
}
