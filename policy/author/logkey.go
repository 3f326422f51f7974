package author

import (
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

// SetLogKey names the transparency log's origin and public key in a new
// policy version. The key must be ECDSA P-256 or Ed25519 (the signed-note
// signature types verifiers accept).
func (d *Draft) SetLogKey(k *keys.PublicKey, origin string, expiry time.Duration) error {
	if origin == "" {
		return errors.New("the log origin is empty")
	}
	if s := k.Scheme(); s != keys.SchemeECDSAP256 && s != keys.SchemeEd25519 {
		return fmt.Errorf("log key %s has scheme %s; checkpoints need an ECDSA P-256 or Ed25519 key", keys.Short(k.ID()), s)
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		t.UnrecognizedFields[policy.LogField] = map[string]any{
			"origin": origin,
			"key":    map[string]any{"keytype": k.TUF().Type, "scheme": k.TUF().Scheme, "keyval": map[string]any{"public": k.TUF().Value.PublicKey}},
		}
		return nil
	})
}
