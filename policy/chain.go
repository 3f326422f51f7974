package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// HistoryDir is the folder of a trust directory that keeps a copy of every
// published version: history/root.N.json and history/targets.N.json.
const HistoryDir = "history"

// DefaultMaxChain is the most root versions [Load] walks past the trusted
// one when [LoadOptions.MaxChain] is zero.
const DefaultMaxChain = 1024

// Errors of the root chain, besides [ErrRollback], [ErrThreshold] and
// [ErrExpired].
var (
	ErrSkippedVersion = errors.New("root version missing from the chain")
	ErrChainTooLong   = errors.New("root chain longer than the maximum")
)

// Source supplies trust metadata: the latest root.json and targets.json,
// and published versions by number. [DirSource] reads a trust directory; a
// TUF client cache (N.root.json, N.targets.json, as consistent snapshots
// name them) can implement it too. A Source must be safe for concurrent use:
// a [Trust] reads earlier targets versions from it while verifying.
type Source interface {
	// Latest returns the newest root.json and targets.json.
	Latest() (root, targets []byte, err error)
	// Root returns published root version v; an error wrapping
	// fs.ErrNotExist when the source does not hold it.
	Root(v int64) ([]byte, error)
	// Targets returns published targets version v; an error wrapping
	// fs.ErrNotExist when the source does not hold it.
	Targets(v int64) ([]byte, error)
}

// DirSource is a trust directory as a [Source]: root.json and targets.json
// at its top, published versions under history/.
type DirSource string

// Latest reads DIR/root.json and DIR/targets.json.
func (d DirSource) Latest() ([]byte, []byte, error) {
	root, err := os.ReadFile(filepath.Join(string(d), RootFile))
	if err != nil {
		return nil, nil, fmt.Errorf("reading trust root: %w", err)
	}
	targets, err := os.ReadFile(filepath.Join(string(d), TargetsFile))
	if err != nil {
		return nil, nil, fmt.Errorf("reading policy: %w", err)
	}
	return root, targets, nil
}

// Root reads DIR/history/root.V.json.
func (d DirSource) Root(v int64) ([]byte, error) {
	return os.ReadFile(HistoryPath(string(d), "root", v))
}

// Targets reads DIR/history/targets.V.json.
func (d DirSource) Targets(v int64) ([]byte, error) {
	return os.ReadFile(HistoryPath(string(d), "targets", v))
}

// HistoryPath is the path of version v of role ("root" or "targets") in
// the history of trust directory dir.
func HistoryPath(dir, role string, v int64) string {
	return filepath.Join(dir, HistoryDir, role+"."+strconv.FormatInt(v, 10)+".json")
}

// MemorySource is a [Source] held in memory. Roots and TargetsVersions may
// be nil: without them, no chain can be walked and no earlier version read.
type MemorySource struct {
	RootData, TargetsData []byte
	Roots                 map[int64][]byte
	TargetsVersions       map[int64][]byte
}

// Latest returns RootData and TargetsData.
func (m MemorySource) Latest() ([]byte, []byte, error) { return m.RootData, m.TargetsData, nil }

// Root returns Roots[v].
func (m MemorySource) Root(v int64) ([]byte, error) { return lookup(m.Roots, "root", v) }

// Targets returns TargetsVersions[v].
func (m MemorySource) Targets(v int64) ([]byte, error) {
	return lookup(m.TargetsVersions, "targets", v)
}

func lookup(m map[int64][]byte, role string, v int64) ([]byte, error) {
	if data, ok := m[v]; ok {
		return data, nil
	}
	return nil, fmt.Errorf("%s version %d: %w", role, v, fs.ErrNotExist)
}

// walkRoots proves latest from the trusted root, one version at a time, as
// TUF's client workflow does (section 5.3 of the specification): each
// version N+1 must be signed by a threshold of version N's root keys and by
// a threshold of its own. Intermediate versions may have expired; the final
// one may not. It returns the final root (latest itself).
func walkRoots(src Source, latest *metadata.Metadata[metadata.RootType], opts LoadOptions) (*metadata.Metadata[metadata.RootType], error) {
	maxChain := opts.MaxChain
	if maxChain <= 0 {
		maxChain = DefaultMaxChain
	}
	start, label, err := startRoot(src, latest, opts)
	if err != nil {
		return nil, err
	}
	if err := start.VerifyDelegate(metadata.ROOT, start); err != nil {
		return nil, fmt.Errorf("%s: %w: version %d is not signed by a threshold of its own root keys: %w", label, ErrThreshold, start.Signed.Version, err)
	}
	switch sv, lv := start.Signed.Version, latest.Signed.Version; {
	case lv < sv:
		return nil, fmt.Errorf("%s: %w: version %d is lower than version %d already trusted", RootFile, ErrRollback, lv, sv)
	case lv == sv:
		if start != latest {
			same, err := SameSigned(start.Signed, latest.Signed)
			if err != nil {
				return nil, err
			}
			if !same {
				return nil, fmt.Errorf("%s: %w: version %d differs from the trusted %s of the same version", RootFile, ErrRollback, lv, label)
			}
			if err := latest.VerifyDelegate(metadata.ROOT, latest); err != nil {
				return nil, fmt.Errorf("%s: %w: %w", RootFile, ErrThreshold, err)
			}
		}
		return latest, nil
	}
	cur := start
	for steps := 0; cur.Signed.Version < latest.Signed.Version; steps++ {
		n := cur.Signed.Version + 1
		if steps >= maxChain {
			return nil, fmt.Errorf("%w: root.json is version %d, more than %d versions past the trusted version %d", ErrChainTooLong, latest.Signed.Version, maxChain, start.Signed.Version)
		}
		next, name := latest, RootFile
		if n < latest.Signed.Version {
			name = "history/root." + strconv.FormatInt(n, 10) + ".json"
			data, err := src.Root(n)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: %s is missing, so root.json version %d cannot be proven from the trusted version %d", ErrSkippedVersion, name, latest.Signed.Version, start.Signed.Version)
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", name, err)
			}
			if next, err = ParseRoot(data); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		if next.Signed.Version != n {
			return nil, fmt.Errorf("%s: %w: holds version %d where version %d is next (skipped version)", name, ErrSkippedVersion, next.Signed.Version, n)
		}
		if err := cur.VerifyDelegate(metadata.ROOT, next); err != nil {
			return nil, fmt.Errorf("%s: %w: version %d is not signed by a threshold of version %d's root keys: %w", name, ErrThreshold, n, cur.Signed.Version, err)
		}
		if err := next.VerifyDelegate(metadata.ROOT, next); err != nil {
			return nil, fmt.Errorf("%s: %w: version %d is not signed by a threshold of its own root keys: %w", name, ErrThreshold, n, err)
		}
		cur = next
	}
	return cur, nil
}

// startRoot picks the root the chain starts from: the root the caller pins;
// else the version already trusted, from the history; else version 1 from
// the history; else, on first use of a source that keeps no history,
// root.json itself (trust on first use).
func startRoot(src Source, latest *metadata.Metadata[metadata.RootType], opts LoadOptions) (*metadata.Metadata[metadata.RootType], string, error) {
	if opts.TrustRoot != nil {
		r, err := ParseRoot(opts.TrustRoot)
		if err != nil {
			return nil, "", fmt.Errorf("pinned trust root: %w", err)
		}
		if opts.Trusted.Root > r.Signed.Version {
			return nil, "", fmt.Errorf("pinned trust root: %w: version %d is lower than version %d already trusted", ErrRollback, r.Signed.Version, opts.Trusted.Root)
		}
		return r, "pinned trust root", nil
	}
	v := max(opts.Trusted.Root, 1)
	if latest.Signed.Version < v {
		return nil, "", fmt.Errorf("%s: %w: version %d is lower than version %d already trusted", RootFile, ErrRollback, latest.Signed.Version, v)
	}
	if latest.Signed.Version == v {
		return latest, RootFile, nil
	}
	name := "history/root." + strconv.FormatInt(v, 10) + ".json"
	data, err := src.Root(v)
	switch {
	case errors.Is(err, fs.ErrNotExist) && opts.Trusted.Root > 0:
		return nil, "", fmt.Errorf("%w: %s, the version already trusted, is missing, so root.json version %d cannot be proven", ErrSkippedVersion, name, latest.Signed.Version)
	case errors.Is(err, fs.ErrNotExist):
		// First use of a source without history: root.json is trusted
		// as given, as before versioned trust directories.
		return latest, RootFile, nil
	case err != nil:
		return nil, "", fmt.Errorf("reading %s: %w", name, err)
	}
	r, err := ParseRoot(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if r.Signed.Version != v {
		return nil, "", fmt.Errorf("%s: %w: holds version %d", name, ErrMalformed, r.Signed.Version)
	}
	return r, name, nil
}

// SameSigned reports whether two "signed" objects have the same canonical
// JSON (how a kept history entry is matched to the published metadata).
func SameSigned(a, b any) (bool, error) {
	ca, err := cjson.EncodeCanonical(a)
	if err != nil {
		return false, err
	}
	cb, err := cjson.EncodeCanonical(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ca, cb), nil
}

// expiredErr formats an expiry failure of file.
func expiredErr(file string, exp time.Time) error {
	return fmt.Errorf("%s: %w (expired %s)", file, ErrExpired, exp.UTC().Format(time.RFC3339))
}
