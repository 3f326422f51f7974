// Package limitread reads input of untrusted size under a byte limit: a
// file or stream over the limit is refused after reading at most one byte
// more than the limit, never read whole.
//
// It is the one bounded reader of the module: attestations
// ([github.com/quorate-dev/quorate/attest.ReadLimited]), Sigstore bundles,
// SBOMs and materials, and the files the CLI reads all go through it.
package limitread

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// ErrTooLarge is what every [TooLargeError] matches with errors.Is.
var ErrTooLarge = errors.New("over the size limit")

// TooLargeError says that the input named Name (a file's path; empty for a
// stream) is over Limit bytes.
type TooLargeError struct {
	Name  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("over the %d-byte limit", e.Limit)
	}
	return fmt.Sprintf("%s is over the %d-byte limit", e.Name, e.Limit)
}

// Is reports whether target is [ErrTooLarge].
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// ReadAll reads r to its end, at most limit bytes: more is a
// [*TooLargeError]. It reads at most limit+1 bytes; limit must be at least
// 0 (a negative limit reads nothing and refuses any byte).
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	return read(r, limit, sizeHint(r, limit), "")
}

// ReadFile reads the file at path, at most limit bytes: a larger file is a
// [*TooLargeError] naming the path and the limit, refused before it is read
// whole. Errors opening or reading it are the [*os.PathError]s naming it.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hint := 512
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() >= 0 && fi.Size() <= limit {
		hint = int(fi.Size()) + 1
	}
	return read(f, limit, hint, path)
}

func read(r io.Reader, limit int64, hint int, name string) ([]byte, error) {
	if limit < 0 {
		limit = 0
	}
	data, err := readAll(io.LimitReader(r, min(limit, math.MaxInt64-1)+1), hint)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Name: name, Limit: limit}
	}
	return data, nil
}

// sizeHint returns the capacity to read r into: its length when it tells it
// (a bytes.Reader, strings.Reader or bytes.Buffer does) and that is within
// limit, plus one byte to see the end; otherwise 512, as io.ReadAll starts.
func sizeHint(r io.Reader, limit int64) int {
	if lr, ok := r.(interface{ Len() int }); ok {
		if n := int64(lr.Len()); n >= 0 && n <= limit {
			return int(n) + 1
		}
	}
	return 512
}

// readAll is io.ReadAll starting with capacity size.
func readAll(r io.Reader, size int) ([]byte, error) {
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}
