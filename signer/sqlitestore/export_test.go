package sqlitestore

import "testing"

// Pragma reads a pragma on the writer's connection.
func Pragma(t *testing.T, s *Store, name string) string {
	t.Helper()
	var v string
	if err := s.writer.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// Commits returns the number of write transactions committed.
func Commits(s *Store) int64 { return s.commits.Load() }
