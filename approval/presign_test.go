package approval_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

func trustDir(t *testing.T, now time.Time) *policy.Trust {
	t.Helper()
	dir := t.TempDir()
	admin := testkeys.Signer(t, hsm.ECDSAP256)
	d, err := author.Init(dir, []*keys.PublicKey{admin.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	return publish(t, d, admin, now, func(d *author.Draft) error {
		return errors.Join(
			d.SetRole("originator", []*keys.PublicKey{testkeys.Signer(t, hsm.Ed25519).Public()}, 1, 0),
			d.SetGate("staging", []string{"originator"}, 0))
	})
}

func TestCheckRequest(t *testing.T) {
	now := time.Now()
	trust := trustDir(t, now)
	app := attest.Subject{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("a", 64)}}
	extra := attest.Subject{Name: "evil.bin", Digest: map[string]string{"sha256": strings.Repeat("e", 64)}}
	statement := func(t *testing.T, id string, version int64, expires time.Time, subjects ...attest.Subject) []byte {
		t.Helper()
		st, err := attest.NewStatement(subjects, attest.Predicate{Gate: "staging", RequestID: id, Created: now.Add(-time.Minute), Expires: expires,
			Policy: attest.PolicyRef{Version: version, Digest: map[string]string{"sha256": trust.Digest}}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	artifact := func(s attest.Subject) policy.Artifact {
		return policy.Artifact{Name: s.Name, Digests: []attest.Digest{{Alg: "sha256", Hex: s.Digest["sha256"]}}}
	}
	later := now.Add(time.Hour)
	for _, c := range []struct {
		name      string
		check     approval.Presign
		refused   string // "" accepted
		wantExtra int
	}{
		{"Accepted", approval.Presign{ID: "r1", Payload: statement(t, "r1", 1, later, app), Trust: trust, Artifacts: []policy.Artifact{artifact(app)}}, "", 0},
		{"WrongPayloadType", approval.Presign{ID: "r1", PayloadType: "text/plain", Payload: statement(t, "r1", 1, later, app)}, "payloadType", 0},
		{"NotAStatement", approval.Presign{ID: "r1", Payload: []byte(`{"hello":"world"}`)}, "request r1", 0},
		{"PayloadNamesAnotherRequest", approval.Presign{ID: "r1", Payload: statement(t, "r2", 1, later, app)}, `names request "r2"`, 0},
		{"Expired", approval.Presign{ID: "r1", Payload: statement(t, "r1", 1, now.Add(-time.Second), app)}, "expired", 0},
		{"OtherPolicyVersion", approval.Presign{ID: "r1", Payload: statement(t, "r1", 2, later, app), Trust: trust}, "policy v2", 0},
		{"ArtifactNotCovered", approval.Presign{ID: "r1", Payload: statement(t, "r1", 1, later, extra), Artifacts: []policy.Artifact{artifact(app)}}, "does not cover app.tgz", 0},
		{"ExtraSubjectReturned", approval.Presign{ID: "r1", Payload: statement(t, "r1", 1, later, app, extra), Artifacts: []policy.Artifact{artifact(app)}}, "", 1},
		{"NoArtifactsNoExtra", approval.Presign{ID: "r1", Payload: statement(t, "r1", 1, later, app, extra)}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.check.PayloadType == "" {
				c.check.PayloadType = attest.PayloadType
			}
			c.check.Now = now
			got, err := approval.CheckRequest(c.check)
			if c.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(got.Extra) != c.wantExtra {
					t.Fatalf("extra subjects %v, want %d", got.Extra, c.wantExtra)
				}
				return
			}
			if !errors.Is(err, approval.ErrRefused) || !strings.Contains(err.Error(), c.refused) {
				t.Fatalf("got %v, want a refusal mentioning %q", err, c.refused)
			}
		})
	}
}
