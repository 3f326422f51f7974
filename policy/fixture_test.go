package policy_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

// epoch is the fixed clock of every policy test.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

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
type roleSpec struct {
	name      string
	signers   []signer
	threshold int
}

func p256(tb testing.TB, n int) []signer {
	out := make([]signer, n)
	for i := range out {
		out[i] = testkeys.Signer(tb, hsm.ECDSAP256)
	}
	return out
}

// defaultRoles: originator 2 keys (threshold 1), integrator 2 (2), operator 2 (2), all P-256.
func defaultRoles(tb testing.TB) []roleSpec {
	return []roleSpec{
		{"originator", p256(tb, 2), 1},
		{"integrator", p256(tb, 2), 2},
		{"operator", p256(tb, 2), 2},
	}
}

// fixture is a signed trust directory with its keys.
type fixture struct {
	dir     string
	admins  []signer
	roles   []roleSpec
	gates   map[string][]string
	trust   *policy.Trust
	root    []byte // root.json as saved
	targets []byte // targets.json as saved
}

// newFixture builds a trust directory in a temporary directory: two
// administrators (threshold 2), the given roles, gate "production" naming
// every role and gate "staging" naming the first two; signed by both
// administrators and loaded at epoch.
func newFixture(tb testing.TB, specs []roleSpec) *fixture {
	tb.Helper()
	f := &fixture{dir: tb.TempDir(), admins: p256(tb, 2), roles: specs, gates: map[string][]string{}}
	d, err := policy.Init(f.dir, publics(f.admins), 2, epoch, policy.DefaultRootExpiry, policy.DefaultTargetsExpiry)
	if err != nil {
		tb.Fatal(err)
	}
	var all []string
	for _, r := range specs {
		if err := d.SetRole(r.name, publics(r.signers), r.threshold, 0); err != nil {
			tb.Fatal(err)
		}
		all = append(all, r.name)
	}
	f.gates["production"] = all
	if len(all) > 2 {
		f.gates["staging"] = all[:2]
	}
	for name, rs := range f.gates {
		if err := d.SetGate(name, rs, 0); err != nil {
			tb.Fatal(err)
		}
	}
	signDraft(tb, d, f.admins...)
	if err := d.Save(); err != nil {
		tb.Fatal(err)
	}
	f.root = readFile(tb, filepath.Join(f.dir, policy.RootFile))
	f.targets = readFile(tb, filepath.Join(f.dir, policy.TargetsFile))
	f.trust, err = policy.Load(f.dir, policy.LoadOptions{Now: epoch})
	if err != nil {
		tb.Fatalf("loading the fixture's trust directory: %v", err)
	}
	return f
}

func publics(ss []signer) []*keys.PublicKey {
	out := make([]*keys.PublicKey, len(ss))
	for i, s := range ss {
		out[i] = s.Public()
	}
	return out
}

func signDraft(tb testing.TB, d *policy.Draft, admins ...signer) {
	tb.Helper()
	for _, a := range admins {
		if _, err := d.Sign(context.Background(), a); err != nil {
			tb.Fatal(err)
		}
	}
}

func readFile(tb testing.TB, p string) []byte {
	tb.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func (f *fixture) role(name string) roleSpec {
	for _, r := range f.roles {
		if r.name == name {
			return r
		}
	}
	panic("no role " + name)
}

// approvers returns, for each role of gate, its first threshold signers.
func (f *fixture) approvers(gate string) []signer {
	var out []signer
	for _, name := range f.gates[gate] {
		r := f.role(name)
		out = append(out, r.signers[:r.threshold]...)
	}
	return out
}

// predicate approves gate under the fixture's policy, valid for a day.
func (f *fixture) predicate(gate string) attest.Predicate {
	return attest.Predicate{
		Gate:      gate,
		Policy:    attest.PolicyRef{Version: f.trust.Version(), Digest: map[string]string{"sha256": f.trust.Digest}},
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
	d, err := policy.OpenDraft(f.dir, epoch)
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.SetGate("canary", []string{f.roles[0].name}, 0); err != nil {
		tb.Fatal(err)
	}
	signDraft(tb, d, f.admins...)
	if err := d.Save(); err != nil {
		tb.Fatal(err)
	}
	f.gates["canary"] = []string{f.roles[0].name}
	f.root = readFile(tb, filepath.Join(f.dir, policy.RootFile))
	f.targets = readFile(tb, filepath.Join(f.dir, policy.TargetsFile))
	if f.trust, err = policy.Load(f.dir, policy.LoadOptions{Now: epoch}); err != nil {
		tb.Fatal(err)
	}
}
