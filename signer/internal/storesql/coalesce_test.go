package storesql

import (
	"reflect"
	"testing"
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
