package policy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quorate-dev/quorate/policy"
)

func TestStateFile(t *testing.T) {
	st := &policy.StateFile{Path: filepath.Join(t.TempDir(), "quorate", "trusted.json")}
	if got, err := st.Load(); err != nil || got != (policy.Trusted{}) {
		t.Fatalf("missing file: %+v, %v; want zero versions", got, err)
	}
	steps := []struct {
		name  string
		raise policy.Trusted
		want  policy.Trusted
	}{
		{"first versions", policy.Trusted{Root: 1, Targets: 3}, policy.Trusted{Root: 1, Targets: 3}},
		{"a higher policy", policy.Trusted{Root: 1, Targets: 4}, policy.Trusted{Root: 1, Targets: 4}},
		{"an older directory never lowers", policy.Trusted{Root: 1, Targets: 2}, policy.Trusted{Root: 1, Targets: 4}},
		{"each version kept at its highest", policy.Trusted{Root: 2, Targets: 1}, policy.Trusted{Root: 2, Targets: 4}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			got, err := st.Raise(s.raise)
			if err != nil || got != s.want {
				t.Fatalf("Raise: %+v, %v; want %+v", got, err, s.want)
			}
			if got, err := st.Load(); err != nil || got != s.want {
				t.Fatalf("Load: %+v, %v; want %+v", got, err, s.want)
			}
		})
	}
	if fi, err := os.Stat(st.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v, %v; want 0600", fi, err)
	}
}

func TestStateFileRefuses(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"not JSON", "{"},
		{"negative version", `{"root":-1,"targets":2}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "trusted.json")
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			st := &policy.StateFile{Path: p}
			if _, err := st.Load(); err == nil {
				t.Fatal("a corrupt state file loaded")
			}
			if _, err := st.Raise(policy.Trusted{Root: 5, Targets: 5}); err == nil {
				t.Fatal("a corrupt state file was overwritten")
			}
		})
	}
}

func TestNilStateFile(t *testing.T) {
	var st *policy.StateFile
	if got, err := st.Load(); err != nil || got != (policy.Trusted{}) {
		t.Fatalf("nil Load: %+v, %v", got, err)
	}
	if _, err := st.Raise(policy.Trusted{Root: 1, Targets: 1}); err != nil {
		t.Fatalf("nil Raise: %v", err)
	}
}
