package policy_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// chain is a trust directory taken through a series of published versions.
type chain struct {
	t   *testing.T
	dir string
}

// publish opens the draft at now, applies edit, saves, has signers sign,
// saves, and loads the result (from version 1 of the history).
func (c *chain) publish(now time.Time, edit func(d *author.Draft) error, signers ...signer) *policy.Trust {
	c.t.Helper()
	d, err := author.OpenDraft(c.dir, now)
	if err != nil {
		c.t.Fatal(err)
	}
	if edit != nil {
		if err := edit(d); err != nil {
			c.t.Fatal(err)
		}
		if err := d.Save(); err != nil {
			c.t.Fatal(err)
		}
		if d, err = author.OpenDraft(c.dir, now); err != nil {
			c.t.Fatal(err)
		}
	}
	signDraft(c.t, d, signers...)
	if err := d.Save(); err != nil {
		c.t.Fatal(err)
	}
	trust, err := policy.Load(c.dir, policy.LoadOptions{Now: now})
	if err != nil {
		c.t.Fatalf("loading after publishing: %v", err)
	}
	return trust
}

// approve signs an approval of the test artifact for gate under trust's
// current version.
func approve(tb testing.TB, trust *policy.Trust, gate string, signers ...signer) []byte {
	tb.Helper()
	p := attest.Predicate{
		Gate:      gate,
		Policy:    attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
		RequestID: "req-v" + string(rune('0'+trust.Version())),
		Created:   epoch,
		Expires:   epoch.Add(30 * 24 * time.Hour),
	}
	st, err := attest.NewStatement([]attest.Subject{artifactSubject()}, p)
	if err != nil {
		tb.Fatal(err)
	}
	return encode(tb, signEnvelope(tb, st, signers...))
}

// TestVersionedPolicyChain takes one trust directory through key
// additions, a threshold change, a retirement, a revocation and a root
// rotation, and verifies attestations signed under each version against
// the latest.
func TestVersionedPolicyChain(t *testing.T) {
	admins := p256(t, 3)
	a1, a2, a3 := admins[0], admins[1], admins[2]
	devs, cis := p256(t, 3), p256(t, 2)
	dev1, dev2, dev3, ci1, ci2 := devs[0], devs[1], devs[2], cis[0], cis[1]
	c := &chain{t: t, dir: t.TempDir()}
	hour := time.Hour

	// v1: two administrators (threshold 2), originator {dev1}, integrator {ci1}.
	d, err := author.Init(c.dir, publics([]signer{a1, a2}), 2, epoch, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	v1 := c.publish(epoch, func(d *author.Draft) error {
		return errors.Join(
			d.SetRole("originator", publics([]signer{dev1}), 1, 0),
			d.SetRole("integrator", publics([]signer{ci1}), 1, 0),
			d.SetGate("production", []string{"originator", "integrator"}, 0))
	}, a1, a2)
	att1 := approve(t, v1, "production", dev1, ci1)

	// v2: a key added to originator.
	v2 := c.publish(epoch.Add(1*hour), func(d *author.Draft) error {
		return d.SetRole("originator", publics([]signer{dev1, dev2}), 1, 0)
	}, a1, a2)
	att2 := approve(t, v2, "production", dev2, ci1)

	// v3: originator's threshold raised to 2.
	v3 := c.publish(epoch.Add(2*hour), func(d *author.Draft) error {
		return d.SetRole("originator", publics([]signer{dev1, dev2}), 2, 0)
	}, a1, a2)
	att3 := approve(t, v3, "production", dev1, dev2, ci1)
	under3ByOne := approve(t, v3, "production", dev2, ci1)

	// v4: dev1 retired at +10h, after dev3 joined (retiring first would
	// leave originator below its threshold).
	retiredAt := epoch.Add(10 * hour)
	v4 := c.publish(retiredAt, func(d *author.Draft) error {
		err := d.Retire(dev1.Public(), 0)
		if !errors.Is(err, policy.ErrBelowThreshold) || !strings.Contains(err.Error(), `role "originator" with 1 key(s), below its threshold 2`) {
			t.Errorf("retiring below the threshold: got %v", err)
		}
		return errors.Join(
			d.SetRole("originator", publics([]signer{dev1, dev2, dev3}), 2, 0),
			d.Retire(dev1.Public(), 0))
	}, a1, a2)
	att4 := approve(t, v4, "production", dev2, dev3, ci1)

	// v5: ci1 revoked since +15h, after ci2 joined integrator.
	since := epoch.Add(15 * hour)
	v5 := c.publish(epoch.Add(20*hour), func(d *author.Draft) error {
		return errors.Join(
			d.SetRole("integrator", publics([]signer{ci1, ci2}), 1, 0),
			d.Revoke(ci1.Public(), since, "CI runner compromised", 0))
	}, a1, a2)
	att5 := approve(t, v5, "production", dev2, dev3, ci2)

	// Root version 2: administrators {a2, a3}, signed by a threshold of
	// the old administrators {a1, a2} and of the new {a2, a3}.
	rotated := epoch.Add(21 * hour)
	d, err = author.OpenDraft(c.dir, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetAdmins(publics([]signer{a2, a3}), 2, 0); err != nil {
		t.Fatal(err)
	}
	signDraft(t, d, a1, a2)
	if d.RootPublished() {
		t.Fatal("root version 2 published without a threshold of its own keys")
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(c.dir, policy.LoadOptions{Now: rotated}); !errors.Is(err, policy.ErrThreshold) {
		t.Fatalf("loading a half-signed rotation: got %v, want ErrThreshold", err)
	}
	root2 := c.publish(rotated, nil, a3)
	if root2.Root.Signed.Version != 2 || root2.Version() != 5 {
		t.Fatalf("after rotation: root v%d, policy v%d; want root v2, policy v5", root2.Root.Signed.Version, root2.Version())
	}

	// v6 under the new administrators.
	v6 := c.publish(epoch.Add(22*hour), func(d *author.Draft) error {
		return d.SetGate("staging", []string{"originator"}, 0)
	}, a2, a3)
	att6 := approve(t, v6, "staging", dev2, dev3)

	now := epoch.Add(24 * hour)
	pinned := readFile(t, policy.HistoryPath(c.dir, "root", 1))
	for _, load := range []struct {
		name string
		opts policy.LoadOptions
	}{
		{"from history version 1", policy.LoadOptions{Now: now}},
		{"from the trusted versions", policy.LoadOptions{Now: now, Trusted: policy.Trusted{Root: 1, Targets: 5}}},
		{"from the trusted root version 2", policy.LoadOptions{Now: now, Trusted: policy.Trusted{Root: 2}}},
		{"from a pinned root", policy.LoadOptions{Now: now, TrustRoot: pinned}},
	} {
		trust, err := policy.Load(c.dir, load.opts)
		if err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		if trust.Root.Signed.Version != 2 || trust.Version() != 6 {
			t.Errorf("%s: root v%d, policy v%d; want root v2, policy v6", load.name, trust.Root.Signed.Version, trust.Version())
		}
	}
	final, err := policy.Load(c.dir, policy.LoadOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got := final.Lifecycle.Versions(); len(got) != 5 || got[0] != 1 || got[4] != 5 {
		t.Errorf("history endorses versions %v, want 1..5", got)
	}
	for v, tr := range map[int64]*policy.Trust{1: v1, 2: v2, 3: v3, 4: v4, 5: v5} {
		if final.Lifecycle.History[v] != tr.Digest {
			t.Errorf("history[%d] = %s, want the digest of version %d", v, final.Lifecycle.History[v], v)
		}
	}

	logged := func(pairs ...any) map[string]time.Time {
		m := map[string]time.Time{}
		for i := 0; i < len(pairs); i += 2 {
			m[pairs[i].(signer).Public().ID()] = pairs[i+1].(time.Time)
		}
		return m
	}
	tests := []struct {
		name    string
		env     []byte
		gate    string
		logged  map[string]time.Time
		version int64
		want    []string // reasons; none means verified
		revoked string   // key ID of a signature reported revoked
	}{
		{name: "latest version", env: att6, gate: "staging", version: 6},
		{name: "version 5 after the root rotation", env: att5, version: 5},
		{name: "version 4: revoked key without a logged time", env: att4, version: 4,
			want:    []string{`role "integrator": 0 of 1`, "key revoked since 2030-01-02T18:04:05Z (CI runner compromised): the signature has no trusted logged time"},
			revoked: ci1.Public().ID()},
		{name: "version 4: revoked key logged before the compromise", env: att4, version: 4,
			logged: logged(ci1, since.Add(-time.Second))},
		{name: "version 4: revoked key logged at the compromise", env: att4, version: 4,
			logged:  logged(ci1, since),
			want:    []string{"CI runner compromised): the signature was logged at 2030-01-02T18:04:05Z"},
			revoked: ci1.Public().ID()},
		{name: "version 4: revoked key logged after the compromise", env: att4, version: 4,
			logged:  logged(ci1, since.Add(time.Hour)),
			want:    []string{`role "integrator": 0 of 1`},
			revoked: ci1.Public().ID()},
		{name: "version 3 with the revoked key logged before", env: att3, version: 3,
			logged: logged(ci1, epoch.Add(3*hour))},
		{name: "version 3 signed by fewer than its threshold", env: under3ByOne, version: 3,
			logged: logged(ci1, epoch.Add(3*hour)),
			want:   []string{`role "originator": 1 of 2`}},
		{name: "version 2 with the revoked key logged before", env: att2, version: 2,
			logged: logged(ci1, epoch.Add(3*hour))},
		{name: "version 1: retired key without a logged time still counts", env: att1, version: 1,
			logged: logged(ci1, epoch.Add(hour))},
		{name: "version 1: retired key logged before its retirement", env: att1, version: 1,
			logged: logged(ci1, epoch.Add(hour), dev1, retiredAt.Add(-time.Second))},
		{name: "version 1: retired key logged at its retirement", env: att1, version: 1,
			logged: logged(ci1, epoch.Add(hour), dev1, retiredAt),
			want:   []string{"key retired at 2030-01-02T13:04:05Z: the signature was logged at 2030-01-02T13:04:05Z", `role "originator": 0 of 1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gate := tc.gate
			if gate == "" {
				gate = "production"
			}
			req := request(gate)
			req.Now, req.LoggedTimes = now, tc.logged
			v := final.VerifyBytes(tc.env, req, policy.WithHistory(final.Source()))
			if v.PolicyVersion != tc.version || v.LatestPolicyVersion != 6 {
				t.Errorf("checked against version %d (latest %d), want %d (latest 6)", v.PolicyVersion, v.LatestPolicyVersion, tc.version)
			}
			if len(tc.want) == 0 {
				if !v.Verified {
					t.Fatalf("not verified: %v", v.Reasons)
				}
			} else {
				requireReasons(t, v, tc.want...)
			}
			for _, s := range v.Signatures {
				// A revoked or retired key's uncounted signature carries its kind's code.
				if (s.Revoked && s.Code != policy.ErrKeyRevoked.Code()) || (s.Retired && s.Code != policy.ErrKeyRetired.Code()) {
					t.Errorf("signature by %s: revoked %v, retired %v, code %q", keys.Short(s.KeyID), s.Revoked, s.Retired, s.Code)
				}
				if !v.Verified && (s.Revoked && !errors.Is(v.Err(), policy.ErrKeyRevoked) || s.Retired && !errors.Is(v.Err(), policy.ErrKeyRetired)) {
					t.Errorf("errors.Is(v.Err(), revoked/retired) false: %v", v.Err())
				}
				if got := s.Revoked; got != (s.KeyID == tc.revoked) {
					t.Errorf("signature by %s: revoked %v", keys.Short(s.KeyID), got)
				}
				if s.Revoked && s.RevocationReason != "CI runner compromised" {
					t.Errorf("revocation reason %q", s.RevocationReason)
				}
			}
		})
	}

	t.Run("earlier version naming another version's digest", func(t *testing.T) {
		st, err := attest.NewStatement([]attest.Subject{artifactSubject()}, attest.Predicate{
			Gate: "production", Policy: attest.PolicyRef{Version: 3, Digest: map[string]string{"sha256": v2.Digest}},
			RequestID: "req-x", Created: epoch, Expires: now.Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		req := request("production")
		req.Now = now
		v := final.VerifyBytes(encode(t, signEnvelope(t, st, dev2, ci2)), req, policy.WithHistory(final.Source()))
		requireReasons(t, v, "policy version 3 is endorsed with digest sha256:"+v3.Digest)
	})

	t.Run("tampered history file", func(t *testing.T) {
		p := policy.HistoryPath(c.dir, "targets", 2)
		orig := readFile(t, p)
		t.Cleanup(func() { writeTestFile(t, p, orig) })
		writeTestFile(t, p, []byte(strings.Replace(string(orig), `"threshold": 1`, `"threshold": 2`, 1)))
		req := request("production")
		req.Now, req.LoggedTimes = now, logged(ci1, epoch.Add(3*hour))
		requireReasons(t, final.VerifyBytes(att2, req, policy.WithHistory(final.Source())), "history/targets.2.json is version 2 with digest", "but version 2 is endorsed with digest sha256:"+v2.Digest)
	})

	t.Run("history is immutable", func(t *testing.T) {
		p := policy.HistoryPath(c.dir, "targets", 6)
		orig := readFile(t, p)
		t.Cleanup(func() { writeTestFile(t, p, orig) })
		writeTestFile(t, p, readFile(t, policy.HistoryPath(c.dir, "targets", 5)))
		d, err := author.OpenDraft(c.dir, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Save(); err == nil || !strings.Contains(err.Error(), "history/targets.6.json already holds a different published targets version 6") {
			t.Errorf("Save over a different history file: got %v", err)
		}
	})

	if _, err := os.Stat(policy.HistoryPath(c.dir, "root", 2)); err != nil {
		t.Errorf("root version 2 not kept in the history: %v", err)
	}
}

// TestLifecycleEdits covers the refusals of retire, revoke and role edits.
func TestLifecycleEdits(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	orig := f.role("originator").Signers
	integ := f.role("integrator").Signers
	if err := d.Revoke(orig[0].Public(), epoch, "stolen", 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func() error
		is   error
		want string
	}{
		{"retire leaving a role below its threshold", func() error { return d.Retire(integ[0].Public(), 0) },
			policy.ErrBelowThreshold, `retiring key ` + keys.Short(integ[0].Public().ID()) + ` would leave role "integrator" with 1 key(s), below its threshold 2`},
		{"revoke leaving a role below its threshold", func() error { return d.Revoke(integ[1].Public(), epoch, "lost", 0) },
			policy.ErrBelowThreshold, `role "integrator"`},
		{"revoked key rejoining a role", func() error { return d.SetRole("originator", publics(orig), 1, 0) },
			policy.ErrKeyRevoked, "was revoked since 2030-01-02T03:04:05Z (stolen) and cannot rejoin a role"},
		{"revoked key by another key ID rejoining", func() error {
			return d.SetRole("auditor", []*keys.PublicKey{aliasOf(t, orig[0]).Public()}, 1, 0)
		}, policy.ErrKeyRevoked, "cannot rejoin"},
		{"revocation moved later", func() error { return d.Revoke(orig[0].Public(), epoch.Add(time.Hour), "stolen", 0) },
			policy.ErrRevocationLater, "a later time would make more of its signatures count"},
		{"retiring a revoked key", func() error { return d.Retire(orig[0].Public(), 0) },
			policy.ErrKeyRevoked, "already revoked"},
		{"revocation without a reason", func() error { return d.Revoke(orig[1].Public(), epoch, " ", 0) },
			nil, "revocation needs a reason"},
		{"administrator key given to retire", func() error { _, err := d.FindKey(f.Admins[0].Public().ID()); return err },
			policy.ErrKeyAdministrator, "rotate administrators with 'quorate policy admins'"},
		{"administrator key revoked", func() error { return d.Revoke(f.Admins[0].Public(), epoch, "stolen", 0) },
			policy.ErrKeyAdministrator, "rotate administrators first"},
		{"key of no policy version retired", func() error { return d.Retire(p256(t, 1)[0].Public(), 0) },
			policy.ErrKeyNotInPolicy, "in no role of the policy or its history"},
		{"unknown key", func() error { _, err := d.FindKey(strings.Repeat("ab", 32)); return err },
			policy.ErrKeyNotInPolicy, "no signing key"},
		{"key ID prefix too short", func() error { _, err := d.FindKey("abc"); return err },
			nil, "at least its first 12 hex digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.edit()
			if err == nil {
				t.Fatal("edit accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// Moving a revocation earlier is allowed, and the key is found by prefix
	// in the history once it has left every role.
	k, err := d.FindKey(orig[0].Public().ID()[:12])
	if err != nil || k.Identity() != orig[0].Public().Identity() {
		t.Fatalf("FindKey by prefix: %v", err)
	}
	if err := d.Revoke(k, epoch.Add(-time.Hour), "stolen earlier", 0); err != nil {
		t.Fatal(err)
	}
	lc, err := policy.LifecycleOf(d.Targets)
	if err != nil {
		t.Fatal(err)
	}
	if len(lc.Revocations) != 1 || !lc.Revocations[0].Since.Equal(epoch.Add(-time.Hour)) || lc.Revocations[0].Reason != "stolen earlier" {
		t.Errorf("revocations %+v, want one, since an hour before epoch", lc.Revocations)
	}
}
