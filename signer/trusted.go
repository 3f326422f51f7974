package signer

import (
	"context"
	"fmt"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
)

// RollbackError reports a trust directory older than a version remembered
// elsewhere: Role ("root" or "policy") is at Version in the directory, but
// Source remembers Remembered. It matches [policy.ErrRollback].
type RollbackError struct {
	Role                string
	Version, Remembered int64
	Source              string
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("refusing an older trust directory: its %s version %d is lower than version %d, remembered by %s", e.Role, e.Version, e.Remembered, e.Source)
}

// Is reports whether target is [policy.ErrRollback].
func (e *RollbackError) Is(target error) bool { return target == policy.ErrRollback }

// RememberTrust keeps a trust directory from being rolled back by deleting
// one file: it refuses t (with a [RollbackError] naming the source) when its
// root or policy version is lower than the highest one the store's database
// remembers ([Store.TrustedVersions]) or, for a [LedgerStore], the highest
// root_version or policy_version any transparency-log entry records; then
// it raises the database's record to t's versions. The coordinator calls it
// on start and for every policy it loads afterwards; the trusted-versions
// file is the third place, checked when the directory is loaded.
func RememberTrust(ctx context.Context, st Store, t *policy.Trust) error {
	have := t.Versions()
	db, err := st.TrustedVersions(ctx)
	if err != nil {
		return fmt.Errorf("reading the trusted versions the database remembers: %w", err)
	}
	if err := checkRemembered(have, db, "the database", "the database"); err != nil {
		return err
	}
	if ls, ok := st.(LedgerStore); ok {
		lv, err := LoggedVersions(ctx, ls.Ledger())
		if err != nil {
			return err
		}
		if err := checkRemembered(have, lv.Trusted,
			fmt.Sprintf("the transparency log (entry %d)", lv.RootEntry), fmt.Sprintf("the transparency log (entry %d)", lv.TargetsEntry)); err != nil {
			return err
		}
	}
	if _, err := st.RaiseTrustedVersions(ctx, have); err != nil {
		return fmt.Errorf("recording trusted root version %d and policy version %d in the database: %w", have.Root, have.Targets, err)
	}
	return nil
}

func checkRemembered(have, remembered policy.Trusted, rootSource, targetsSource string) error {
	if have.Root < remembered.Root {
		return &RollbackError{Role: "root", Version: have.Root, Remembered: remembered.Root, Source: rootSource}
	}
	if have.Targets < remembered.Targets {
		return &RollbackError{Role: "policy", Version: have.Targets, Remembered: remembered.Targets, Source: targetsSource}
	}
	return nil
}

// Logged is the highest root and policy versions a log records, with the
// index of the first entry recording each (-1 when none does).
type Logged struct {
	policy.Trusted
	RootEntry, TargetsEntry int64
}

// LoggedVersions reads every entry of the log and returns the highest
// root_version and policy_version recorded (request.opened,
// policy.published, root.published, key.revoked...). Entries that do not
// parse are skipped: they are evidence of tampering for `quorate log
// verify` to report, and the coordinator must start to serve them.
func LoggedVersions(ctx context.Context, s ledger.Storage) (Logged, error) {
	out := Logged{RootEntry: -1, TargetsEntry: -1}
	size, err := s.Size(ctx)
	if err != nil {
		return out, fmt.Errorf("reading the log size: %w", err)
	}
	const chunk = 1000
	for start := int64(0); start < size; start += chunk {
		raw, err := s.ReadEntries(ctx, start, min(start+chunk, size))
		if err != nil {
			return out, fmt.Errorf("reading the log for the policy versions it records: %w", err)
		}
		for i, b := range raw {
			e, err := ledger.ParseEntry(b)
			if err != nil {
				continue
			}
			if e.Event.RootVersion > out.Root {
				out.Root, out.RootEntry = e.Event.RootVersion, start+int64(i)
			}
			if e.Event.PolicyVersion > out.Targets {
				out.Targets, out.TargetsEntry = e.Event.PolicyVersion, start+int64(i)
			}
		}
	}
	return out, nil
}
