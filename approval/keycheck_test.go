package approval_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// twoVersions writes a trust directory at version 1 (originator: dev;
// operator: ops, ops2, ops3, threshold 2; gate production needs both;
// ci holds role integrator, which no gate needs), then version 2: an
// unrelated gate added, ops2 revoked and ops3 retired. It returns the
// trust at v1 and at v2.
func twoVersions(t *testing.T, now time.Time) (v1, v2 *policy.Trust, k map[string]*keys.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	admin := testkeys.Signer(t, hsm.ECDSAP256)
	k = map[string]*keys.PublicKey{}
	for _, n := range []string{"dev", "ci", "ops", "ops2", "ops3", "stranger"} {
		k[n] = testkeys.Signer(t, hsm.Ed25519).Public()
	}
	d, err := author.Init(dir, []*keys.PublicKey{admin.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	v1 = publish(t, d, admin, now, func(d *author.Draft) error {
		return errors.Join(
			d.SetRole("originator", []*keys.PublicKey{k["dev"]}, 1, 0),
			d.SetRole("integrator", []*keys.PublicKey{k["ci"]}, 1, 0),
			d.SetRole("operator", []*keys.PublicKey{k["ops"], k["ops2"], k["ops3"]}, 1, 0),
			d.SetGate("production", []string{"originator", "operator"}, 0))
	})
	if d, err = author.OpenDraft(dir, now); err != nil {
		t.Fatal(err)
	}
	v2 = publish(t, d, admin, now, func(d *author.Draft) error {
		return errors.Join(
			d.SetGate("staging", []string{"originator", "integrator"}, 0),
			d.Revoke(k["ops2"], now.Add(-time.Hour), "laptop stolen", 0),
			d.Retire(k["ops3"], 0))
	})
	if v1.Version() != 1 || v2.Version() != 2 {
		t.Fatalf("versions %d, %d", v1.Version(), v2.Version())
	}
	return v1, v2, k
}

// publish applies edit to d, signs it with admin, saves it and loads the
// trust directory.
func publish(t *testing.T, d *author.Draft, admin keys.Signer, now time.Time, edit func(d *author.Draft) error) *policy.Trust {
	t.Helper()
	if err := edit(d); err != nil {
		t.Fatal(err)
	}
	policytest.SignDraft(t, d, admin)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	tr, err := policy.Load(d.Dir, policy.LoadOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestCheckKey(t *testing.T) {
	now := time.Now()
	v1, v2, k := twoVersions(t, now)
	later := now.Add(time.Minute) // the retirement is stamped with the edit's clock
	for _, c := range []struct {
		name     string
		trust    *policy.Trust
		gate     string
		version  int64
		digest   string
		key      string
		wantRole string // "" refused
		kind     *policy.Kind
		msg      string
	}{
		{"LatestVersion", v2, "production", 2, v2.Digest, "ops", "operator", nil, ""},
		{"EarlierVersionUnrelatedChange", v2, "production", 1, v1.Digest, "ops", "operator", nil, ""},
		{"Requester", v2, "production", 1, v1.Digest, "dev", "originator", nil, ""},
		{"RevokedByLatest", v2, "production", 1, v1.Digest, "ops2", "", policy.ErrKeyRevoked, "revoked since"},
		{"RevocationReasonNamed", v2, "production", 1, v1.Digest, "ops2", "", policy.ErrKeyRevoked, "(laptop stolen) by policy v2"},
		{"RetiredByLatest", v2, "production", 1, v1.Digest, "ops3", "", policy.ErrKeyRetired, "retired since"},
		{"RoleTheGateDoesNotNeed", v2, "production", 1, v1.Digest, "ci", "", policy.ErrNotInGate, `the gate's roles: originator, operator); it belongs to role integrator`},
		{"KeyInNoRole", v2, "production", 2, v2.Digest, "stranger", "", policy.ErrNotInGate, "in no role of policy v2"},
		{"UnknownGate", v1, "staging", 1, v1.Digest, "dev", "", policy.ErrUnknownGate, `gate "staging" is not in policy v1`},
		{"NewerThanTrusted", v1, "production", 2, v2.Digest, "ops", "", policy.ErrPolicyMismatch, "newer than the trusted version 1"},
		{"WrongDigest", v2, "production", 1, v2.Digest, "ops", "", policy.ErrPolicyMismatch, "endorsed with digest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := approval.CheckKey(approval.KeyCheck{Trust: c.trust, History: c.trust.Source(), Gate: c.gate,
				Version: c.version, Digest: c.digest, Key: k[c.key], Now: later})
			if c.wantRole != "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.Role != c.wantRole || got.Version != c.version || got.Latest != c.trust.Version() {
					t.Fatalf("got %+v, want role %s under v%d", got, c.wantRole, c.version)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %v", got)
			}
			if !errors.Is(err, approval.ErrRefused) || !errors.Is(err, c.kind) || policy.CodeOf(err) != c.kind.Code() {
				t.Fatalf("got %v (code %q), want a refusal of kind %s", err, policy.CodeOf(err), c.kind.Code())
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "refusing to sign: ") {
				t.Fatalf("got %q, want it to mention %q", err, c.msg)
			}
		})
	}
}

func TestCheckKeyThreshold(t *testing.T) {
	now := time.Now()
	_, v2, k := twoVersions(t, now)
	got, err := approval.CheckKey(approval.KeyCheck{Trust: v2, History: v2.Source(), Gate: "production", Version: 2, Digest: v2.Digest, Key: k["ops"], Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// v2 removed ops2 and ops3 from the role: ops alone, threshold 1.
	if want := "operator (key " + keys.Short(k["ops"].ID()) + ", threshold 1 of 1)"; got.String() != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCheckKeyWithoutHistory(t *testing.T) {
	now := time.Now()
	v1, v2, k := twoVersions(t, now)
	_, err := approval.CheckKey(approval.KeyCheck{Trust: v2, Gate: "production", Version: 1, Digest: v1.Digest, Key: k["ops"], Now: now})
	if !errors.Is(err, policy.ErrHistoryMissing) || !errors.Is(err, policy.ErrPolicyMismatch) {
		t.Fatalf("got %v, want a policy_mismatch refusal wrapping ErrHistoryMissing", err)
	}
}

// TestCheckRequestEarlierVersion: with the trust at v2, a request opened
// under v1 (endorsed) passes the pre-sign checks and is checked against v1;
// one naming v1 with another digest, or v3, is refused as policy_mismatch.
func TestCheckRequestEarlierVersion(t *testing.T) {
	now := time.Now()
	v1, v2, _ := twoVersions(t, now)
	app := attest.Subject{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("a", 64)}}
	payload := func(t *testing.T, version int64, digest string) []byte {
		t.Helper()
		st, err := attest.NewStatement([]attest.Subject{app}, attest.Predicate{Gate: "production", RequestID: "r1", Created: now, Expires: now.Add(time.Hour),
			Policy: attest.PolicyRef{Version: version, Digest: map[string]string{"sha256": digest}}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, c := range []struct {
		name    string
		version int64
		digest  string
		refused bool
	}{
		{"EndorsedEarlierVersion", 1, v1.Digest, false},
		{"LatestVersion", 2, v2.Digest, false},
		{"EarlierVersionOtherDigest", 1, v2.Digest, true},
		{"NewerThanTrusted", 3, v2.Digest, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := approval.CheckRequest(approval.Presign{ID: "r1", PayloadType: attest.PayloadType, Payload: payload(t, c.version, c.digest), Now: now, Trust: v2})
			if c.refused {
				if !errors.Is(err, approval.ErrRefused) || policy.CodeOf(err) != policy.ErrPolicyMismatch.Code() {
					t.Fatalf("got %v, want a policy_mismatch refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != c.version {
				t.Fatalf("checked against v%d, want v%d", got.Version, c.version)
			}
		})
	}
}
