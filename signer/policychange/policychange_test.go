package policychange_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	_ "modernc.org/sqlite"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
	"github.com/quorate-dev/quorate/signer/policychange"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

// world is a trust directory (one administrator, threshold 1), a SQLite
// store with a ledger, and managers opened on them as replicas would be.
type world struct {
	t     *testing.T
	dir   string
	db    string
	admin hsm.Signer
	dev   hsm.Signer
	store *sqlitestore.Store
	lg    *ledger.Log
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, dir: t.TempDir(), db: t.TempDir(), admin: testkeys.Signer(t, hsm.ECDSAP256), dev: testkeys.Signer(t, hsm.Ed25519)}
	now := time.Now()
	d, err := author.Init(w.dir, []*keys.PublicKey{w.admin.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	must(t, d.SetRole("originator", []*keys.PublicKey{w.dev.Public()}, 1, 0))
	must(t, d.SetGate("staging", []string{"originator"}, 0))
	_, err = d.Sign(context.Background(), w.admin)
	must(t, err)
	must(t, d.Save())
	w.lg, err = ledger.New(ledger.Config{Origin: "quorate.test/log", Signer: testkeys.Signer(t, hsm.Ed25519)})
	must(t, err)
	w.store = w.openStore()
	return w
}

func (w *world) openStore() *sqlitestore.Store {
	s, err := sqlitestore.Open(context.Background(), w.db, sqlitestore.Options{Ledger: w.lg})
	must(w.t, err)
	w.t.Cleanup(func() { s.Close() })
	return s
}

// replica starts a coordinator on the trust directory as it is now and a
// manager beside it, as serve does (Recover before serving).
func (w *world) replica(stateDir string) (*policychange.Manager, *signer.Coordinator) {
	trust, err := policy.Load(w.dir, policy.LoadOptions{Now: time.Now()})
	must(w.t, err)
	c, err := signer.New(signer.Config{Trust: trust, Store: w.store, Ledger: w.lg})
	must(w.t, err)
	m, err := policychange.New(policychange.Config{Coordinator: c, Store: w.store, Ledger: w.store, TrustDir: w.dir, StateDir: stateDir})
	must(w.t, err)
	must(w.t, m.Recover(context.Background()))
	return m, c
}

func (w *world) propose(m *policychange.Manager, base int64, spec client.ChangeSpec) (*client.Change, error) {
	spec.BaseVersion, spec.Created = base, time.Now().UTC()
	raw, err := json.Marshal(spec)
	must(w.t, err)
	sig, err := w.admin.Sign(context.Background(), dsse.PAE(client.ChangePayloadType, raw))
	must(w.t, err)
	return m.Propose(context.Background(), client.ProposeInput{Spec: base64.StdEncoding.EncodeToString(raw),
		Signature: attest.Signature{KeyID: w.admin.Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig)}})
}

func (w *world) approve(m *policychange.Manager, ch *client.Change) (*policychange.ApproveResult, error) {
	md, err := policy.ParseTargets(ch.Targets)
	must(w.t, err)
	canon, err := cjson.EncodeCanonical(md.Signed)
	must(w.t, err)
	raw, err := w.admin.Sign(context.Background(), canon)
	must(w.t, err)
	return m.Approve(context.Background(), ch.ID, attest.Signature{KeyID: w.admin.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)})
}

func (w *world) gateSpec(name string) client.ChangeSpec {
	return client.ChangeSpec{Gate: &client.GateSpec{Name: name, Roles: []string{"originator"}}}
}

// published counts the ledger's policy.published entries of version v.
func (w *world) published(v int64) int {
	size, err := w.store.Ledger().Size(context.Background())
	must(w.t, err)
	if size == 0 {
		return 0
	}
	es, _, err := ledger.ReadEntries(context.Background(), w.store.Ledger(), 0, size)
	must(w.t, err)
	n := 0
	for _, e := range es {
		if e.Type == ledger.PolicyPublished && e.PolicyVersion == v {
			n++
		}
	}
	return n
}

func kind(err error) httpapi.Kind {
	var he *httpapi.Error
	if errors.As(err, &he) {
		return he.Kind
	}
	return ""
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReplicasShareChanges: a change proposed through one replica is
// listed, approved and published through another, since both keep changes
// in the store.
func TestReplicasShareChanges(t *testing.T) {
	w := newWorld(t)
	a, _ := w.replica("")
	b, cb := w.replica("")
	ch, err := w.propose(a, 1, w.gateSpec("prod"))
	must(t, err)
	list, err := b.List(context.Background())
	must(t, err)
	if len(list) != 1 || list[0].ID != ch.ID {
		t.Fatalf("replica b lists %v, want the change proposed through a", list)
	}
	res, err := w.approve(b, ch)
	must(t, err)
	if !res.Published || cb.Trust().Version() != 2 || w.published(2) != 1 {
		t.Fatalf("approval through b: published %v, b enforces %d, %d policy.published entries; want published, 2, 1", res.Published, cb.Trust().Version(), w.published(2))
	}
	got, err := a.Get(context.Background(), ch.ID)
	must(t, err)
	if got.State != client.ChangePublished {
		t.Fatalf("replica a sees the change %s, want published", got.State)
	}
}

// TestRestartRecordsInterruptedPublication: the trust directory holds the
// new version but the database refused its ledger entry; after a restart
// Recover records the change as published with its entry before serving.
func TestRestartRecordsInterruptedPublication(t *testing.T) {
	w := newWorld(t)
	m, c := w.replica("")
	ch, err := w.propose(m, 1, w.gateSpec("prod"))
	must(t, err)
	db, err := sql.Open("sqlite", filepath.Join(w.db, sqlitestore.FileName))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TRIGGER refuse_ledger BEFORE INSERT ON ledger_entries BEGIN SELECT RAISE(ABORT, 'injected: ledger refused'); END`)
	must(t, err)
	if _, err := w.approve(m, ch); kind(err) != httpapi.KindUnavailable {
		t.Fatalf("approving while the ledger refuses: %v, want unavailable", err)
	}
	if v := c.Trust().Version(); v != 1 {
		t.Fatalf("the coordinator enforces version %d before it is recorded, want 1", v)
	}
	// The process dies here; the database recovers.
	_, err = db.Exec(`DROP TRIGGER refuse_ledger`)
	must(t, err)
	m2, c2 := w.replica("")
	if v := c2.Trust().Version(); v != 2 {
		t.Fatalf("restarted on the trust directory: version %d, want 2", v)
	}
	if n := w.published(2); n != 1 {
		t.Fatalf("after Recover the ledger holds %d policy.published entries of version 2, want 1", n)
	}
	got, err := m2.Get(context.Background(), ch.ID)
	must(t, err)
	if got.State != client.ChangePublished {
		t.Fatalf("change state after Recover: %s, want published", got.State)
	}
	w.replica("") // a second restart records nothing more
	if n := w.published(2); n != 1 {
		t.Fatalf("a second Recover: %d policy.published entries of version 2, want 1", n)
	}
}

// TestRecoverImportsChangeFiles: change requests an earlier version kept
// as files are imported once and the folder is set aside.
func TestRecoverImportsChangeFiles(t *testing.T) {
	w := newWorld(t)
	m, _ := w.replica("")
	ch, err := w.propose(m, 1, w.gateSpec("prod"))
	must(t, err)
	// A second database, and the change as an earlier version wrote it.
	w.db = t.TempDir()
	w.store = w.openStore()
	state := t.TempDir()
	dir := filepath.Join(state, policychange.ChangesDir)
	must(t, os.MkdirAll(dir, 0o700))
	data, err := json.Marshal(ch)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, ch.ID[len(client.ChangeIDPrefix):]+".json"), data, 0o600))
	m2, _ := w.replica(state)
	got, err := m2.Get(context.Background(), ch.ID)
	must(t, err)
	if got.State != client.ChangePending || got.Digest != ch.Digest {
		t.Fatalf("imported change: %s %s, want pending %s", got.State, got.Digest, ch.Digest)
	}
	if _, err := os.Stat(dir + ".imported"); err != nil {
		t.Fatalf("the imported folder is not set aside: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the change folder is still there: %v", err)
	}
}

func TestManagerEdgeCases(t *testing.T) {
	w := newWorld(t)
	m, _ := w.replica("")
	ch, err := w.propose(m, 1, w.gateSpec("prod"))
	must(t, err)
	for _, c := range []struct {
		name string
		run  func() error
		want httpapi.Kind
	}{
		{"MalformedIDIsNotFound", func() error { _, err := m.Get(context.Background(), "pc:../../etc/passwd"); return err }, httpapi.KindNotFound},
		{"UnknownIDIsNotFound", func() error {
			_, err := m.Get(context.Background(), client.ChangeIDPrefix+"00000000000000000000000000000000")
			return err
		}, httpapi.KindNotFound},
		{"SameProposalTwiceIsDuplicate", func() error {
			_, err := m.Propose(context.Background(), proposeAgain(t, w, ch))
			return err
		}, httpapi.KindDuplicate},
		{"StaleBaseIsStalePolicy", func() error { _, err := w.propose(m, 7, w.gateSpec("qa")); return err }, httpapi.KindStalePolicy},
		{"TwoEditsInOneProposalIsInvalid", func() error {
			s := w.gateSpec("qa")
			s.Retire = w.dev.Public().ID()
			_, err := w.propose(m, 1, s)
			return err
		}, httpapi.KindInvalid},
		{"ApprovalByANonAdministratorIsUnauthorized", func() error {
			md, err := policy.ParseTargets(ch.Targets)
			must(t, err)
			canon, err := cjson.EncodeCanonical(md.Signed)
			must(t, err)
			raw, err := w.dev.Sign(context.Background(), canon)
			must(t, err)
			_, err = m.Approve(context.Background(), ch.ID, attest.Signature{KeyID: w.dev.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)})
			return err
		}, httpapi.KindUnauthorized},
		{"ApprovalOverOtherBytesIsBadSignature", func() error {
			raw, err := w.admin.Sign(context.Background(), []byte("something else"))
			must(t, err)
			_, err = m.Approve(context.Background(), ch.ID, attest.Signature{KeyID: w.admin.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)})
			return err
		}, httpapi.KindBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); kind(err) != c.want {
				t.Fatalf("got %v (kind %q), want kind %q", err, kind(err), c.want)
			}
		})
	}
	// Nothing refused above changed the change.
	got, err := m.Get(context.Background(), ch.ID)
	must(t, err)
	if got.State != client.ChangePending || len(got.Signatures) != 0 {
		t.Fatalf("after refused calls the change is %s with %d signatures, want pending with none", got.State, len(got.Signatures))
	}
	var nilManager *policychange.Manager
	if _, err := nilManager.List(context.Background()); !errors.Is(err, httpapi.ErrNoPolicyChanges) {
		t.Fatalf("List on a nil manager: %v, want ErrNoPolicyChanges", err)
	}
}

// proposeAgain rebuilds the exact proposal of ch (same spec bytes).
func proposeAgain(t *testing.T, w *world, ch *client.Change) client.ProposeInput {
	raw, err := json.Marshal(ch.Spec)
	must(t, err)
	sig, err := w.admin.Sign(context.Background(), dsse.PAE(client.ChangePayloadType, raw))
	must(t, err)
	return client.ProposeInput{Spec: base64.StdEncoding.EncodeToString(raw), Signature: attest.Signature{KeyID: w.admin.Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig)}}
}
