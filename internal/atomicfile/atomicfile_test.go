package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quorate-dev/quorate/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, data := range []string{"first", "second, longer than the first"} {
		if err := atomicfile.Write(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the directory, want 1 (no temporary file left)", len(ents))
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	if err := atomicfile.Write(filepath.Join(t.TempDir(), "absent", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
