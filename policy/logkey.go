package policy

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/keys"
)

// LogField is the custom field of targets.json's "signed" naming the
// transparency log: its origin and public key. Verifiers learn the log key
// from here — signed policy — never from the coordinator.
const LogField = "log"

// LogKey is the transparency log's identity.
type LogKey struct {
	Origin string
	Key    *keys.PublicKey
}

type logField struct {
	Origin string        `json:"origin"`
	Key    *metadata.Key `json:"key"`
}

// ErrNoLogKey is returned when the policy names no transparency log.
var ErrNoLogKey = errors.New("the policy names no transparency log key (quorate policy log-key)")

// LogKeyOf reads the log field of targets metadata.
func LogKeyOf(targets *metadata.Metadata[metadata.TargetsType]) (*LogKey, error) {
	raw, ok := targets.Signed.UnrecognizedFields[LogField]
	if !ok || raw == nil {
		return nil, ErrNoLogKey
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: log: %w", TargetsFile, ErrMalformed, err)
	}
	var f logField
	if err := strictjson.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w: log: %w", TargetsFile, ErrMalformed, err)
	}
	if f.Origin == "" || f.Key == nil {
		return nil, fmt.Errorf("%s: %w: log needs an origin and a key", TargetsFile, ErrMalformed)
	}
	k, err := keys.FromTUF(f.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: log key: %w", TargetsFile, err)
	}
	return &LogKey{Origin: f.Origin, Key: k}, nil
}

// LogKey returns the transparency log named by the trusted policy: read
// once by [LoadFrom] (every composite check asks for it), otherwise from
// t.Targets. The caller may change the returned value.
func (t *Trust) LogKey() (*LogKey, error) {
	if !t.logKey.read {
		return LogKeyOf(t.Targets)
	}
	if t.logKey.err != nil {
		return nil, t.logKey.err
	}
	lk := *t.logKey.key
	return &lk, nil
}

// readLogKey is [LogKeyOf], as [Trust] keeps it.
type readLogKey struct {
	read bool
	key  *LogKey
	err  error
}
