package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are what cmd/quorate must not import itself: it is
// flags, wiring and printing (docs/architecture.md). Storage is reached
// through signer/sqlitestore and signer/pgstore, never a driver or SQL;
// the coordinator's internals stay behind signer's exported API; Merkle
// math lives in ledger.
var forbiddenImports = []struct{ prefix, why string }{
	{"database/sql", "SQL belongs to the stores (signer/sqlitestore, signer/pgstore)"},
	{"github.com/jackc/", "the PostgreSQL driver belongs to signer/pgstore"},
	{"modernc.org/sqlite", "the SQLite driver belongs to signer/sqlitestore"},
	{"github.com/mattn/go-sqlite3", "the SQLite driver belongs to signer/sqlitestore"},
	{"github.com/quorate-dev/quorate/signer/internal/", "signer's internals: use its exported API"},
	{"github.com/transparency-dev/merkle", "Merkle trees and proofs belong to ledger"},
}

// TestThinCLI: no non-test file of the CLI imports what belongs in the
// library below it.
func TestThinCLI(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, fb := range forbiddenImports {
				if path == strings.TrimSuffix(fb.prefix, "/") || strings.HasPrefix(path, fb.prefix) {
					t.Errorf("%s imports %s: %s", f, path, fb.why)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d files: run from cmd/quorate", checked)
	}
}
