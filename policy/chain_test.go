package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/policy"
)

// rootSpec is one root version of a rotation table, in the manner of the
// TUF conformance suite: the key indexes its root role names, its
// threshold, the key indexes that sign it, and its expiry.
type rootSpec struct {
	keys      []int
	threshold int
	signers   []int
	version   int64         // 0: its position in the chain
	expires   time.Duration // from epoch; 0: a year
	missing   bool          // not written to the history
}

// writeChain writes roots as history/root.N.json (the last also as
// root.json) and a targets.json signed by the last root's keys, in a new
// directory. pool holds the keys the indexes name.
func writeChain(t *testing.T, pool []signer, roots []rootSpec) (dir string, rootBytes [][]byte) {
	t.Helper()
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, policy.HistoryDir), 0o755); err != nil {
		t.Fatal(err)
	}
	var last *metadata.Metadata[metadata.RootType]
	for i, spec := range roots {
		exp := spec.expires
		if exp == 0 {
			exp = 365 * 24 * time.Hour
		}
		r := metadata.Root(epoch.Add(exp))
		r.Signed.Version = int64(i + 1)
		if spec.version != 0 {
			r.Signed.Version = spec.version
		}
		for _, k := range spec.keys {
			for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
				if err := r.Signed.AddKey(pool[k].Public().TUF(), role); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, role := range r.Signed.Roles {
			role.Threshold = spec.threshold
		}
		for _, s := range spec.signers {
			r.Signatures = append(r.Signatures, signSigned(t, pool[s], r.Signed))
		}
		data, err := r.ToBytes(true)
		if err != nil {
			t.Fatal(err)
		}
		rootBytes = append(rootBytes, data)
		if !spec.missing {
			writeTestFile(t, policy.HistoryPath(dir, "root", r.Signed.Version), data)
		}
		if i == len(roots)-1 {
			writeTestFile(t, filepath.Join(dir, policy.RootFile), data)
			last = r
		}
	}
	tg := metadata.Targets(epoch.Add(90 * 24 * time.Hour))
	tg.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{}}
	for _, id := range last.Signed.Roles[metadata.TARGETS].KeyIDs {
		for _, s := range pool {
			if s.Public().ID() == id {
				tg.Signatures = append(tg.Signatures, signSigned(t, s, tg.Signed))
			}
		}
	}
	data, err := tg.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, policy.TargetsFile), data)
	return dir, rootBytes
}

func signSigned(t *testing.T, s signer, signed any) metadata.Signature {
	t.Helper()
	canon, err := cjson.EncodeCanonical(signed)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Sign(context.Background(), canon)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.Signature{KeyID: s.Public().ID(), Signature: raw}
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRootChain walks root rotations: each version must be signed by a
// threshold of the previous version's root keys and of its own, without
// rollback, skipped versions or an endless chain, and the final version
// must not have expired.
func TestRootChain(t *testing.T) {
	pool := p256(t, 5)
	year := 365 * 24 * time.Hour
	tests := []struct {
		name     string
		roots    []rootSpec
		trusted  policy.Trusted
		pin      int // 1-based index of the root to pin with TrustRoot; 0: none
		maxChain int
		is       error
		want     string // in the error; "" means the chain verifies
		final    int64
	}{
		{
			name:  "one root",
			roots: []rootSpec{{keys: []int{0, 1}, threshold: 2, signers: []int{0, 1}}},
			final: 1,
		},
		{
			name: "rotation to new keys signed by both thresholds",
			roots: []rootSpec{
				{keys: []int{0, 1}, threshold: 2, signers: []int{0, 1}},
				{keys: []int{2, 3}, threshold: 2, signers: []int{0, 1, 2, 3}},
			},
			final: 2,
		},
		{
			name: "rotating one of three keys, kept keys signing once for both",
			roots: []rootSpec{
				{keys: []int{0, 1, 2}, threshold: 2, signers: []int{0, 1}},
				{keys: []int{0, 1, 3}, threshold: 2, signers: []int{0, 1, 3}},
			},
			final: 2,
		},
		{
			name: "threshold raised, signed by both thresholds",
			roots: []rootSpec{
				{keys: []int{0, 1, 2}, threshold: 1, signers: []int{0}},
				{keys: []int{0, 1, 2}, threshold: 3, signers: []int{0, 1, 2}},
			},
			final: 2,
		},
		{
			name: "new root not signed by the old threshold",
			roots: []rootSpec{
				{keys: []int{0, 1}, threshold: 2, signers: []int{0, 1}},
				{keys: []int{2, 3}, threshold: 2, signers: []int{0, 2, 3}},
			},
			is: policy.ErrThreshold, want: "root.json: signatures below threshold: version 2 is not signed by a threshold of version 1's root keys",
		},
		{
			name: "new root not signed by its own threshold",
			roots: []rootSpec{
				{keys: []int{0, 1}, threshold: 2, signers: []int{0, 1}},
				{keys: []int{2, 3}, threshold: 2, signers: []int{0, 1, 2}},
			},
			is: policy.ErrThreshold, want: "version 2 is not signed by a threshold of its own root keys",
		},
		{
			name: "threshold decreased without the old threshold",
			roots: []rootSpec{
				{keys: []int{0, 1}, threshold: 2, signers: []int{0, 1}},
				{keys: []int{0, 1}, threshold: 1, signers: []int{0}},
			},
			is: policy.ErrThreshold, want: "version 2 is not signed by a threshold of version 1's root keys",
		},
		{
			name: "intermediate root not signed by the old threshold",
			roots: []rootSpec{
				{keys: []int{0, 1}, threshold: 2, signers: []int{0, 1}},
				{keys: []int{2}, threshold: 1, signers: []int{2}},
				{keys: []int{2}, threshold: 1, signers: []int{2}},
			},
			is: policy.ErrThreshold, want: "history/root.2.json: signatures below threshold: version 2 is not signed by a threshold of version 1's root keys",
		},
		{
			name: "rollback below the trusted version",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
			},
			trusted: policy.Trusted{Root: 3},
			is:      policy.ErrRollback, want: "root.json: metadata version rolled back: version 2 is lower than version 3 already trusted",
		},
		{
			name: "rollback below the pinned root",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}, version: 3},
				{keys: []int{0}, threshold: 1, signers: []int{0}, version: 2},
			},
			pin: 2,
			is:  policy.ErrRollback, want: "root.json: metadata version rolled back: version 2 is lower than version 3 already trusted",
		},
		{
			name: "skipped version: a history file missing",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}, missing: true},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
			},
			is: policy.ErrSkippedVersion, want: "history/root.2.json is missing, so root.json version 3 cannot be proven from the trusted version 1",
		},
		{
			name: "skipped version: root.json jumps a version",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}, version: 3},
			},
			is: policy.ErrSkippedVersion, want: "history/root.2.json is missing",
		},
		{
			name: "history file holding another version",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
			},
			// filled in below: history/root.2.json replaced by version 3
			is: policy.ErrSkippedVersion, want: "history/root.2.json: root version missing from the chain: holds version 3 where version 2 is next",
		},
		{
			name: "expired final root",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{1}, threshold: 1, signers: []int{0, 1}, expires: -time.Hour},
			},
			is: policy.ErrExpired, want: "root.json: metadata has expired",
		},
		{
			name: "expired intermediate roots are allowed",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}, expires: -year},
				{keys: []int{1}, threshold: 1, signers: []int{0, 1}, expires: -time.Hour},
				{keys: []int{2}, threshold: 1, signers: []int{1, 2}},
			},
			final: 3,
		},
		{
			name: "endless chain beyond MaxChain",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
			},
			maxChain: 3,
			is:       policy.ErrChainTooLong, want: "root.json is version 5, more than 3 versions past the trusted version 1",
		},
		{
			name: "a chain of exactly MaxChain",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{0}, threshold: 1, signers: []int{0}},
			},
			maxChain: 3,
			final:    4,
		},
		{
			name: "walk from the trusted version skips an unprovable start",
			roots: []rootSpec{
				{keys: []int{0, 1}, threshold: 2, signers: []int{0}}, // never published
				{keys: []int{2}, threshold: 1, signers: []int{2}},
				{keys: []int{3}, threshold: 1, signers: []int{2, 3}},
			},
			trusted: policy.Trusted{Root: 2},
			final:   3,
		},
		{
			name: "the same chain from version 1 fails",
			roots: []rootSpec{
				{keys: []int{0, 1}, threshold: 2, signers: []int{0}},
				{keys: []int{2}, threshold: 1, signers: []int{2}},
				{keys: []int{3}, threshold: 1, signers: []int{2, 3}},
			},
			is: policy.ErrThreshold, want: "history/root.1.json: signatures below threshold: version 1 is not signed by a threshold of its own root keys",
		},
		{
			name: "pinned root starts the chain",
			roots: []rootSpec{
				{keys: []int{0}, threshold: 1, signers: []int{0}},
				{keys: []int{1}, threshold: 1, signers: []int{0, 1}},
				{keys: []int{2}, threshold: 1, signers: []int{1, 2}},
			},
			pin:   2,
			final: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, roots := writeChain(t, pool, tc.roots)
			if tc.name == "history file holding another version" {
				writeTestFile(t, policy.HistoryPath(dir, "root", 2), roots[2])
			}
			opts := policy.LoadOptions{Now: epoch, Trusted: tc.trusted, MaxChain: tc.maxChain}
			if tc.pin > 0 {
				opts.TrustRoot = roots[tc.pin-1]
			}
			trust, err := policy.Load(dir, opts)
			if tc.is == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got := trust.Root.Signed.Version; got != tc.final {
					t.Errorf("final root version %d, want %d", got, tc.final)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want %v", tc.is)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
