package ledger

import (
	"errors"
	"fmt"
	"testing"
)

func TestCode(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"foreign error", errors.New("connection refused"), ""},
		{"fork, typed", fmt.Errorf("audit: %w", &ForkError{PreviousSize: 3, Size: 2}), "fork"},
		{"modified entry, typed", &LeafMismatchError{Index: 1}, "entry_modified"},
		{"root mismatch, typed", &RootMismatchError{Size: 2}, "root_mismatch"},
		{"sequence, typed", &SequenceError{Index: 4}, "sequence"},
		{"checkpoint signature, wrapped", fmt.Errorf("checkpoint: %w", ErrCheckpointSignature), "checkpoint_signature"},
		{"proof, wrapped", fmt.Errorf("x: %w", ErrProof), "proof"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Code(tc.err); got != tc.want {
				t.Fatalf("Code(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
	// Every sentinel has a code of its own.
	seen := map[string]bool{}
	for _, c := range codes {
		if Code(c.err) != c.code || seen[c.code] {
			t.Errorf("sentinel %v: code %q not its own", c.err, c.code)
		}
		seen[c.code] = true
	}
}
