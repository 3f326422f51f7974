package policy_test

import (
	"errors"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// TestLogKeyReadAtLoad: a loaded trust answers the log key it was loaded
// with, each caller its own copy; a trust built otherwise reads its
// targets; a policy naming no log says so either way.
func TestLogKeyReadAtLoad(t *testing.T) {
	load := func(t *testing.T, logKey *keys.PublicKey) *policy.Trust {
		return loadEdited(t, func(d *author.Draft) error {
			if logKey == nil {
				return nil
			}
			return d.SetLogKey(logKey, "log.example/quorate", 0)
		})
	}
	logKey := testkeys.Signer(t, hsm.ECDSAP256).Public()

	t.Run("loaded", func(t *testing.T) {
		trust := load(t, logKey)
		lk, err := trust.LogKey()
		if err != nil || lk.Origin != "log.example/quorate" || lk.Key.ID() != logKey.ID() {
			t.Fatalf("LogKey() = %+v, %v; want origin log.example/quorate, key %s", lk, err, logKey.ID())
		}
		lk.Origin = "changed by a caller"
		// What Load read is kept: not read again from the targets.
		delete(trust.Targets.Signed.UnrecognizedFields, policy.LogField)
		if again, err := trust.LogKey(); err != nil || again.Origin != "log.example/quorate" {
			t.Errorf("LogKey() after a caller changed its copy and the targets changed = %+v, %v; want what Load read", again, err)
		}
	})
	t.Run("built otherwise", func(t *testing.T) {
		loaded := load(t, logKey)
		built := &policy.Trust{Root: loaded.Root, Targets: loaded.Targets}
		if lk, err := built.LogKey(); err != nil || lk.Key.ID() != logKey.ID() {
			t.Errorf("LogKey() = %+v, %v; want key %s", lk, err, logKey.ID())
		}
	})
	t.Run("no log", func(t *testing.T) {
		trust := load(t, nil)
		if _, err := trust.LogKey(); !errors.Is(err, policy.ErrNoLogKey) {
			t.Errorf("LogKey() error = %v, want %v", err, policy.ErrNoLogKey)
		}
	})
}
