package limitread_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/quorate-dev/quorate/internal/limitread"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func TestReadAll(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		limit   int64
		tooBig  bool
		wantLen int
	}{
		{"empty", "", 10, false, 0},
		{"under the limit", "abc", 10, false, 3},
		{"at the limit", "abcdefghij", 10, false, 10},
		{"one byte over", "abcdefghijk", 10, true, 0},
		{"far over", strings.Repeat("x", 1<<20), 10, true, 0},
		{"zero limit, empty", "", 0, false, 0},
		{"zero limit, one byte", "x", 0, true, 0},
		{"negative limit", "x", -5, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := limitread.ReadAll(strings.NewReader(tc.in), tc.limit)
			checkResult(t, got, err, tc.tooBig, tc.wantLen, "")
			got, err = limitread.ReadAll(iotest.OneByteReader(strings.NewReader(tc.in)), tc.limit)
			checkResult(t, got, err, tc.tooBig, tc.wantLen, "")
		})
	}
}

func checkResult(t *testing.T, got []byte, err error, tooBig bool, wantLen int, name string) {
	t.Helper()
	if tooBig {
		var tl *limitread.TooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, limitread.ErrTooLarge) {
			t.Fatalf("err = %v, want a TooLargeError", err)
		}
		if tl.Name != name {
			t.Fatalf("TooLargeError names %q, want %q", tl.Name, name)
		}
		if !strings.Contains(err.Error(), "-byte limit") || (name != "" && !strings.Contains(err.Error(), name)) {
			t.Fatalf("message %q does not name the file and the limit", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != wantLen {
		t.Fatalf("read %d bytes, want %d", len(got), wantLen)
	}
}

// TestReadAllStopsAfterLimit: an endless stream is refused after limit+1
// bytes, not read whole.
func TestReadAllStopsAfterLimit(t *testing.T) {
	r := &countingReader{r: endless{}}
	if _, err := limitread.ReadAll(r, 100); !errors.Is(err, limitread.ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if r.n != 101 {
		t.Fatalf("read %d bytes of an endless stream, want 101", r.n)
	}
}

func TestReadAllReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := limitread.ReadAll(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), 10)
	if !errors.Is(err, boom) || errors.Is(err, limitread.ErrTooLarge) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.json")
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(small, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 11), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := limitread.ReadFile(small, 10)
	checkResult(t, got, err, false, 10, "")
	got, err = limitread.ReadFile(big, 10)
	checkResult(t, got, err, true, 0, big)
	if _, err := limitread.ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := limitread.ReadFile(dir, 10); err == nil {
		t.Fatal("a directory read as a file")
	}
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
