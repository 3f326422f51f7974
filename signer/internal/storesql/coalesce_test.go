package storesql

import (
	"reflect"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestInsertShape(t *testing.T) {
	cases := []struct {
		name, sql  string
		head, tail string
		k          int
		ok         bool
	}{
		{"signature row", `INSERT INTO signatures (a, b, c) VALUES ($1, $2, $3) ON CONFLICT (a, b) DO NOTHING`,
			`INSERT INTO signatures (a, b, c) VALUES `, ` ON CONFLICT (a, b) DO NOTHING`, 3, true},
		{"no conflict clause", `INSERT INTO t (x) VALUES ($1)`, `INSERT INTO t (x) VALUES `, ``, 1, true},
		{"an update", `UPDATE requests SET updated_ns = $1 WHERE id = $2`, "", "", 0, false},
		{"a literal among the values", `INSERT INTO t (x, y) VALUES ($1, 0)`, "", "", 0, false},
		{"a placeholder used twice", `INSERT INTO t (x, y, z) VALUES ($1, $2, $1)`, "", "", 0, false},
		{"placeholders out of order", `INSERT INTO t (x, y) VALUES ($2, $1)`, "", "", 0, false},
		{"no values list", `INSERT INTO t SELECT * FROM u`, "", "", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head, tail, k, ok := insertShape(tc.sql)
			if ok != tc.ok || (ok && (head != tc.head || tail != tc.tail || k != tc.k)) {
				t.Errorf("insertShape = %q, %q, %d, %v; want %q, %q, %d, %v", head, tail, k, ok, tc.head, tc.tail, tc.k, tc.ok)
			}
		})
	}
}

func TestMultiRow(t *testing.T) {
	st := multiRow(`INSERT INTO t (x, y) VALUES `, ` ON CONFLICT (x) DO NOTHING`, 2, [][]any{{1, "a"}, {2, "b"}, {3, "c"}})
	want := `INSERT INTO t (x, y) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT (x) DO NOTHING`
	if st.SQL != want || !reflect.DeepEqual(st.Args, []any{1, "a", 2, "b", 3, "c"}) {
		t.Errorf("multiRow = %q %v\nwant %q", st.SQL, st.Args, want)
	}
}

func TestPow2Chunks(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		few  bool
		want [][2]int
	}{
		{"none", 0, true, nil},
		{"one row", 1, true, [][2]int{{0, 1}}},
		{"a power of two", 64, true, [][2]int{{0, 64}}},
		{"seven rows", 7, true, [][2]int{{0, 4}, {4, 6}, {6, 7}}},
		{"one short of a power", 63, true, [][2]int{{0, 32}, {32, 48}, {48, 56}, {56, 60}, {60, 62}, {62, 63}}},
		{"any count without few shapes", 37, false, [][2]int{{0, 37}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pow2Chunks(tc.n, tc.few); !slices.Equal(got, tc.want) {
				t.Errorf("pow2Chunks(%d, %v) = %v, want %v", tc.n, tc.few, got, tc.want)
			}
		})
	}
}

func TestInList(t *testing.T) {
	args := []any{"a", "b", "c"}
	in, got := Dialect{FewShapes: true}.inList(args)
	if in != "$1, $2, $3, $4" || !slices.Equal(got, []any{"a", "b", "c", "c"}) {
		t.Errorf("inList with few shapes = %q %v, want 4 placeholders, the last value repeated", in, got)
	}
	if len(args) != 3 || cap(args) != 3 {
		t.Errorf("inList changed its argument: %v", args)
	}
	if in, got := (Dialect{}).inList(args); in != "$1, $2, $3" || !slices.Equal(got, args) {
		t.Errorf("inList = %q %v, want the values as they are", in, got)
	}
	long := make([]any, maxRowsPerInsert+1)
	if _, got := (Dialect{FewShapes: true}).inList(long); len(got) != len(long) {
		t.Errorf("inList of %d values with few shapes gave %d, want them as they are", len(long), len(got))
	}
}

// Every statement a batch queues row by row coalesces: its text has an
// INSERT shape (a line break before VALUES once kept webhook deliveries
// to a statement each).
func TestQueuedInsertsCoalesce(t *testing.T) {
	for name, sql := range map[string]string{
		"signature":        insertLoggedPartialSQL,
		"webhook delivery": insertDeliverySQL,
	} {
		if _, _, _, ok := insertShape(sql); !ok {
			t.Errorf("%s: %q has no INSERT shape: each row would be a statement of its own", name, sql)
		}
	}
	var l Ledger
	stmts, _ := l.insertStmts(0, [][]byte{{1}}, []tlog.Hash{{}})
	for _, st := range stmts {
		if _, _, _, ok := insertShape(st.SQL); !ok {
			t.Errorf("log append: %q has no INSERT shape", st.SQL)
		}
	}
}
