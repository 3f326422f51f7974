package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quorate-dev/quorate/internal/atomicfile"
)

// StateFile is the rollback-protection state of a verifier: a JSON file
// ({"root": N, "targets": M}) remembering the highest root and policy
// versions it has trusted. Pass what [StateFile.Load] returns as
// [LoadOptions.Trusted], and after a successful [Load] call
// [StateFile.Raise] with [Trust.Versions], so an older trust directory is
// refused next time.
//
// A nil *StateFile is no state: Load returns zero versions and Raise does
// nothing. A StateFile is not safe for concurrent use by several processes
// (the last writer wins, and it never writes lower versions than it read).
type StateFile struct {
	// Path is the file; its directory is created (mode 0700) on Raise.
	Path string
}

// Load returns the versions the file remembers, zero when it does not exist.
func (s *StateFile) Load() (Trusted, error) {
	var t Trusted
	if s == nil {
		return t, nil
	}
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("reading trust state: %w", err)
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return Trusted{}, fmt.Errorf("trust state %s is corrupt: %w", s.Path, err)
	}
	if t.Root < 0 || t.Targets < 0 {
		return Trusted{}, fmt.Errorf("trust state %s is corrupt: negative version", s.Path)
	}
	return t, nil
}

// Raise records t, keeping for each version the higher of t and what the
// file holds, and writes the file (atomically, mode 0600) only when that
// raises a version. It returns the versions now remembered.
func (s *StateFile) Raise(t Trusted) (Trusted, error) {
	if s == nil {
		return t, nil
	}
	had, err := s.Load()
	if err != nil {
		return had, err
	}
	next := Trusted{Root: max(had.Root, t.Root), Targets: max(had.Targets, t.Targets)}
	if next == had {
		return had, nil
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return had, fmt.Errorf("saving trust state: %w", err)
	}
	data, err := json.Marshal(next)
	if err != nil {
		return had, fmt.Errorf("saving trust state: %w", err)
	}
	if err := atomicfile.Write(s.Path, data, 0o600); err != nil {
		return had, fmt.Errorf("saving trust state: %w", err)
	}
	return next, nil
}
