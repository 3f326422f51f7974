package policy_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// epoch is the fixed clock of every policy test.
var epoch = policytest.Epoch

// artifact is the release every test approves.
var artifact = []byte("quorate test release 1.2.3\n")

// signer is what a test signs with: an hsm file: signer or an alias of one.
type signer = keys.Signer

// alias is a signer whose public key is the same key under another TUF
// record (and so another key ID).
type alias struct {
	signer
	pub *keys.PublicKey
}

func (a alias) Public() *keys.PublicKey { return a.pub }

// aliasOf lists s's key under the older TUF key type "ecdsa-sha2-nistp256"
// (s must hold a P-256 key), which gives it another key ID.
func aliasOf(tb testing.TB, s signer) signer {
	tb.Helper()
	rec := s.Public().TUF()
	rec.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT
	pub, err := keys.FromTUF(rec)
	if err != nil {
		tb.Fatal(err)
	}
	if pub.ID() == s.Public().ID() || pub.Identity() != s.Public().Identity() {
		tb.Fatal("alias has the same ID or another identity")
	}
	return alias{signer: s, pub: pub}
}

// roleSpec is one signing role of a fixture.
type roleSpec = policytest.RoleSpec

var (
	p256         = policytest.P256
	defaultRoles = policytest.DefaultRoles
	publics      = policytest.Publics
	signDraft    = policytest.SignDraft
	readFile     = policytest.ReadFile
)

// fixture is a signed trust directory with its keys (policytest.Fixture)
// and the approvals these tests make under it.
type fixture struct{ *policytest.Fixture }

func newFixture(tb testing.TB, specs []roleSpec) *fixture {
	return &fixture{policytest.NewFixture(tb, specs)}
}

func (f *fixture) role(name string) roleSpec {
	for _, r := range f.Roles {
		if r.Name == name {
			return r
		}
	}
	panic("no role " + name)
}

// approvers returns, for each role of gate, its first threshold signers.
func (f *fixture) approvers(gate string) []signer {
	var out []signer
	for _, name := range f.Gates[gate] {
		r := f.role(name)
		out = append(out, r.Signers[:r.Threshold]...)
	}
	return out
}

// predicate approves gate under the fixture's policy, valid for a day.
func (f *fixture) predicate(gate string) attest.Predicate {
	return attest.Predicate{
		Gate:      gate,
		Policy:    attest.PolicyRef{Version: f.Trust.Version(), Digest: map[string]string{"sha256": f.Trust.Digest}},
		RequestID: "req-0001",
		Created:   epoch,
		Expires:   epoch.Add(24 * time.Hour),
	}
}

// statement encodes the approval of the artifact for gate, after mut.
func (f *fixture) statement(tb testing.TB, gate string, mut func(*attest.Predicate)) []byte {
	tb.Helper()
	p := f.predicate(gate)
	if mut != nil {
		mut(&p)
	}
	st, err := attest.NewStatement([]attest.Subject{artifactSubject()}, p)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// approved is the artifact's envelope for gate signed by exactly the
// signers it needs.
func (f *fixture) approved(tb testing.TB, gate string) []byte {
	tb.Helper()
	return encode(tb, signEnvelope(tb, f.statement(tb, gate, nil), f.approvers(gate)...))
}

// request asks to verify the artifact for gate an hour after epoch.
func request(gate string) policy.Request {
	s := artifactSubject()
	return policy.Request{
		Gate:      gate,
		Artifacts: []policy.Artifact{{Name: s.Name, Digests: []attest.Digest{{Alg: "sha256", Hex: s.Digest["sha256"]}}}},
		Now:       epoch.Add(time.Hour),
	}
}

func artifactSubject() attest.Subject {
	s256, s512 := sha256.Sum256(artifact), sha512.Sum512(artifact)
	return attest.Subject{Name: "app.tar.gz", Digest: map[string]string{"sha256": hex.EncodeToString(s256[:]), "sha512": hex.EncodeToString(s512[:])}}
}

// signEnvelope wraps statement in an envelope signed by each signer in turn.
func signEnvelope(tb testing.TB, statement []byte, signers ...signer) *attest.Envelope {
	tb.Helper()
	env := attest.NewEnvelope(statement)
	for _, s := range signers {
		if _, err := attest.Sign(context.Background(), env, s); err != nil {
			tb.Fatal(err)
		}
	}
	return env
}

// rawSignature signs msg itself (not a PAE) and returns a DSSE signature.
func rawSignature(tb testing.TB, s signer, msg []byte) attest.Signature {
	tb.Helper()
	raw, err := s.Sign(context.Background(), msg)
	if err != nil {
		tb.Fatal(err)
	}
	return attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}
}

func encode(tb testing.TB, env *attest.Envelope) []byte {
	tb.Helper()
	data, err := attest.Encode(env)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// rawStatement encodes a statement with any subjects and predicate type,
// bypassing attest.NewStatement's checks.
func rawStatement(tb testing.TB, subjects []attest.Subject, predicateType string, p attest.Predicate) []byte {
	tb.Helper()
	pred, err := json.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := json.Marshal(attest.Statement{Type: attest.StatementType, Subject: subjects, PredicateType: predicateType, Predicate: pred})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// bump publishes the next policy version: it adds gate "canary" (naming the
// first role), has both administrators sign, saves and reloads.
func (f *fixture) bump(tb testing.TB) {
	tb.Helper()
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.SetGate("canary", []string{f.Roles[0].Name}, 0); err != nil {
		tb.Fatal(err)
	}
	signDraft(tb, d, f.Admins...)
	if err := d.Save(); err != nil {
		tb.Fatal(err)
	}
	f.Gates["canary"] = []string{f.Roles[0].Name}
	f.Reload(tb)
}

// loadEdited creates a trust directory with one Ed25519 administrator,
// lets edit change the draft, signs, saves and loads it.
func loadEdited(t *testing.T, edit func(d *author.Draft) error) *policy.Trust {
	t.Helper()
	dir := t.TempDir()
	admin := testkeys.Signer(t, hsm.Ed25519)
	d, err := author.Init(dir, []*keys.PublicKey{admin.Public()}, 1, time.Now(), author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if err := edit(d); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	trust, err := policy.Load(dir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return trust
}
