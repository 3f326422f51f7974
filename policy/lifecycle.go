package policy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/roles"
)

// Custom fields of targets.json's "signed" that carry the policy's past:
// every earlier published version's policy digest, the keys retired and the
// keys revoked. The editing functions of policy/author.Draft maintain them.
const (
	HistoryField     = "history"
	RetiredField     = "retired"
	RevocationsField = "revocations"
)

// MaxReasonLen bounds a revocation's reason text.
const MaxReasonLen = 1024

// Retirement records a key taken out of service: signatures logged at or
// after At no longer count.
type Retirement struct {
	KeyID    string    `json:"keyid"`
	Identity string    `json:"identity"`
	At       time.Time `json:"at"`
}

// Revocation records a key compromised since Since: only signatures with a
// trusted logged time strictly before Since count.
type Revocation struct {
	KeyID    string    `json:"keyid"`
	Identity string    `json:"identity"`
	Since    time.Time `json:"since"`
	Reason   string    `json:"reason"`
}

// Lifecycle is what a targets version says of the past: the policy digest
// of each earlier version it endorses, and the keys retired and revoked.
type Lifecycle struct {
	History     map[int64]string
	Retired     []Retirement
	Revocations []Revocation
}

// LifecycleOf reads and checks the history, retired and revocations fields
// of targets metadata. History may only name versions below the targets'
// own, each with a SHA-256 in hex; identities are SHA-256 in hex.
func LifecycleOf(targets *metadata.Metadata[metadata.TargetsType]) (*Lifecycle, error) {
	lc := &Lifecycle{History: map[int64]string{}}
	var hist map[string]string
	if err := customField(targets, HistoryField, &hist); err != nil {
		return nil, err
	}
	for k, d := range hist {
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil || v < 1 || strconv.FormatInt(v, 10) != k {
			return nil, fmt.Errorf("%s: %w: history: %q is not a version number", TargetsFile, ErrMalformed, k)
		}
		if v >= targets.Signed.Version {
			return nil, fmt.Errorf("%s: %w: history names version %d, not earlier than the policy's own version %d", TargetsFile, ErrMalformed, v, targets.Signed.Version)
		}
		if !isSHA256Hex(d) {
			return nil, fmt.Errorf("%s: %w: history: version %d: digest %q is not a SHA-256 in lower-case hex", TargetsFile, ErrMalformed, v, d)
		}
		lc.History[v] = d
	}
	if err := customField(targets, RetiredField, &lc.Retired); err != nil {
		return nil, err
	}
	for _, r := range lc.Retired {
		if r.KeyID == "" || !isSHA256Hex(r.Identity) || r.At.IsZero() {
			return nil, fmt.Errorf("%s: %w: retired: each entry needs a keyid, a SHA-256 identity and a time (key %s)", TargetsFile, ErrMalformed, keys.Short(r.KeyID))
		}
	}
	if err := customField(targets, RevocationsField, &lc.Revocations); err != nil {
		return nil, err
	}
	for _, r := range lc.Revocations {
		if r.KeyID == "" || !isSHA256Hex(r.Identity) || r.Since.IsZero() || r.Reason == "" || len(r.Reason) > MaxReasonLen {
			return nil, fmt.Errorf("%s: %w: revocations: each entry needs a keyid, a SHA-256 identity, a since time and a reason of at most %d bytes (key %s)", TargetsFile, ErrMalformed, MaxReasonLen, keys.Short(r.KeyID))
		}
	}
	return lc, nil
}

// customField decodes a custom field of targets' "signed" strictly into out;
// an absent field leaves out as it is.
func customField(targets *metadata.Metadata[metadata.TargetsType], name string, out any) error {
	raw, ok := targets.Signed.UnrecognizedFields[name]
	if !ok || raw == nil {
		return nil
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("%s: %w: %s: %w", TargetsFile, ErrMalformed, name, err)
	}
	if err := strictjson.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w: %s: %w", TargetsFile, ErrMalformed, name, err)
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && s == hexLower(s)
}

func hexLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Revoked returns the revocation of the key with identity id, if any.
func (lc *Lifecycle) Revoked(id keys.Identity) (Revocation, bool) {
	s := id.String()
	for _, r := range lc.Revocations {
		if r.Identity == s {
			return r, true
		}
	}
	return Revocation{}, false
}

// RetiredAt returns the retirement of the key with identity id, if any.
func (lc *Lifecycle) RetiredAt(id keys.Identity) (Retirement, bool) {
	s := id.String()
	for _, r := range lc.Retired {
		if r.Identity == s {
			return r, true
		}
	}
	return Retirement{}, false
}

// Versions returns the versions the history endorses, ascending.
func (lc *Lifecycle) Versions() []int64 {
	out := make([]int64, 0, len(lc.History))
	for v := range lc.History {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Errors of verification against an earlier policy version.
var (
	ErrNotEndorsed      = errors.New("policy version not endorsed by the latest policy")
	ErrHistoryMissing   = errors.New("earlier policy version not available")
	ErrHistoryMismatch  = errors.New("earlier policy version does not match its endorsed digest")
	ErrKeyNotInPolicy   = errors.New("key is in no policy version")
	ErrBelowThreshold   = errors.New("role would fall below its threshold")
	ErrRevocationLater  = errors.New("revocation would move later")
	ErrKeyAdministrator = errors.New("key is an administrator key")
)

// PolicyVersion is one version of the signing policy, as verification uses it.
type PolicyVersion struct {
	Version int64
	Digest  string
	Roles   *roles.Set
	// Log is the transparency log the version names, or nil.
	Log *LogKey
	// KeyNames are the version's key names (display only).
	KeyNames KeyNames
}

// PolicyAt returns policy version v, whose digest must be digest: the
// latest version, or an earlier one the latest endorses in its history,
// read from src (history/targets.V.json; usually [Trust.Source]) and checked
// against the endorsed digest. Its signatures are not checked: the
// endorsement by the current administrators is what makes it trusted.
// Only an earlier version reads src; a nil src then fails with
// [ErrHistoryMissing].
func (t *Trust) PolicyAt(src Source, v int64, digest string) (*PolicyVersion, error) {
	latest := t.Version()
	switch {
	case v > latest:
		return nil, fmt.Errorf("policy version %d is newer than the trusted version %d: update the trust directory", v, latest)
	case v == latest:
		if digest != t.Digest {
			return nil, fmt.Errorf("%w: policy version %d has digest sha256:%s, not sha256:%s", ErrHistoryMismatch, v, t.Digest, digest)
		}
		lk, _ := t.LogKey()
		return &PolicyVersion{Version: v, Digest: t.Digest, Roles: t.Roles, Log: lk, KeyNames: t.KeyNames}, nil
	}
	endorsed, ok := t.Lifecycle.History[v]
	if !ok {
		return nil, fmt.Errorf("%w: the trusted policy version %d does not list version %d in its history", ErrNotEndorsed, latest, v)
	}
	if endorsed != digest {
		return nil, fmt.Errorf("%w: policy version %d is endorsed with digest sha256:%s, not sha256:%s", ErrHistoryMismatch, v, endorsed, digest)
	}
	if src == nil {
		return nil, fmt.Errorf("%w: policy version %d: no history source given to read it from", ErrHistoryMissing, v)
	}
	data, err := src.Targets(v)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: policy version %d (history/targets.%d.json) is missing", ErrHistoryMissing, v, v)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: policy version %d: %w", ErrHistoryMissing, v, err)
	}
	old, err := ParseTargets(data)
	if err != nil {
		return nil, fmt.Errorf("history/targets.%d.json: %w", v, err)
	}
	got, err := PolicyDigest(old)
	if err != nil {
		return nil, err
	}
	if got != endorsed || old.Signed.Version != v {
		return nil, fmt.Errorf("%w: history/targets.%d.json is version %d with digest sha256:%s, but version %d is endorsed with digest sha256:%s", ErrHistoryMismatch, v, old.Signed.Version, got, v, endorsed)
	}
	set, err := RolesOf(old)
	if err != nil {
		return nil, fmt.Errorf("history/targets.%d.json: %w", v, err)
	}
	lk, _ := LogKeyOf(old)
	names, _ := KeyNamesOf(old) // display only: a version without valid names shows key IDs
	return &PolicyVersion{Version: v, Digest: got, Roles: set, Log: lk, KeyNames: names}, nil
}

// applyLifecycle applies the latest version's revocations and retirements
// to a valid signature by k, matched by key identity. It returns true, with
// the problem set, when the signature must not count: a revoked key's
// signature without a trusted logged time strictly before the revocation,
// or a retired key's signature logged at or after its retirement.
func (t *Trust) applyLifecycle(sv *SignatureVerdict, k *keys.PublicKey, logged map[string]time.Time) bool {
	at, hasTime := logged[sv.KeyID]
	if hasTime {
		sv.LoggedAt = at
	}
	if r, ok := t.Lifecycle.Revoked(k.Identity()); ok {
		since := r.Since.UTC().Format(time.RFC3339Nano)
		switch {
		case !hasTime:
			sv.refuse(ErrKeyRevoked, nil, fmt.Sprintf("key revoked since %s (%s): the signature has no trusted logged time before then", since, r.Reason))
		case !at.Before(r.Since):
			sv.refuse(ErrKeyRevoked, nil, fmt.Sprintf("key revoked since %s (%s): the signature was logged at %s", since, r.Reason, at.UTC().Format(time.RFC3339Nano)))
		}
		if sv.Problem != "" {
			sv.Revoked, sv.RevocationReason = true, r.Reason
			return true
		}
		// Logged before the compromise: a retirement may still apply.
	}
	if r, ok := t.Lifecycle.RetiredAt(k.Identity()); ok && hasTime && !at.Before(r.At) {
		sv.refuse(ErrKeyRetired, nil, fmt.Sprintf("key retired at %s: the signature was logged at %s", r.At.UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano)))
		sv.Retired = true
		return true
	}
	return false
}
