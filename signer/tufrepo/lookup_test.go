package tufrepo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

// lookupRepo is a trust directory (roles of ordinary keys and of a passkey,
// one TUF target) served over real HTTP by a tufrepo.Repo.
type lookupRepo struct {
	dir, url string
	root1    []byte
	admin    keys.Signer
	repo     *tufrepo.Repo
}

const lookupTarget = "trusted_root.json"

var lookupContent = []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)

func newLookupRepo(t *testing.T, edit func(d *author.Draft)) *lookupRepo {
	t.Helper()
	now := time.Now()
	admin, online := testkeys.Signer(t, hsm.ECDSAP256), testkeys.Signer(t, hsm.ECDSAP256)
	dev, ops := testkeys.Signer(t, hsm.Ed25519), testkeys.Signer(t, hsm.RSA3072)
	r := &lookupRepo{dir: t.TempDir(), admin: admin}
	d, err := author.Init(r.dir, []*keys.PublicKey{admin.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	must(t, d.SetOnlineKey(online.Public(), 0))
	must(t, d.SetRole("originator", []*keys.PublicKey{dev.Public()}, 1, 0))
	must(t, d.SetRole("operator", []*keys.PublicKey{ops.Public(), policytest.PasskeyKey(t)}, 1, 0))
	must(t, d.SetGate("production", []string{"originator", "operator"}, 0))
	sum := sha256.Sum256(lookupContent)
	d.Targets.Signed.Targets[lookupTarget] = &metadata.TargetFiles{Length: int64(len(lookupContent)), Hashes: metadata.Hashes{"sha256": sum[:]}}
	if edit != nil {
		edit(d)
	}
	_, err = d.Sign(context.Background(), admin)
	must(t, err)
	must(t, d.Save())
	r.root1, err = os.ReadFile(policy.HistoryPath(r.dir, "root", 1))
	must(t, err)
	trust, err := policy.Load(r.dir, policy.LoadOptions{Now: now})
	must(t, err)
	r.repo, err = tufrepo.New(context.Background(), tufrepo.Config{Signer: online, StateDir: t.TempDir(), Source: policy.DirSource(r.dir)}, trust)
	must(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tuf/{file}", tufrepo.Handler(r.repo, zap.NewNop()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// updater is go-tuf's updater over the served repository, refreshed.
func (r *lookupRepo) updater(t *testing.T) *updater.Updater {
	t.Helper()
	cfg, err := config.New(r.url+"/v1/tuf/", r.root1)
	must(t, err)
	cache := t.TempDir()
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = cache, filepath.Join(cache, "targets")
	up, err := updater.New(cfg)
	must(t, err)
	must(t, up.Refresh())
	return up
}

// TestGoTUFTargetLookup: go-tuf's updater looks targets up in the served
// repository: a listed target is found with its length and hash, an
// unlisted one is "not found" (not an error about delegated roles missing
// from the snapshot), and neither lookup fetches a signing role's metadata:
// the signing roles (a passkey's among them) are in targets.json's
// signing_roles field, not TUF delegations.
func TestGoTUFTargetLookup(t *testing.T) {
	r := newLookupRepo(t, nil)
	up := r.updater(t)
	ti, err := up.GetTargetInfo(lookupTarget)
	if err != nil {
		t.Fatalf("GetTargetInfo(%s): %v", lookupTarget, err)
	}
	if ti.Length != int64(len(lookupContent)) {
		t.Fatalf("target length %d, want %d", ti.Length, len(lookupContent))
	}
	if err := ti.VerifyLengthHashes(lookupContent); err != nil {
		t.Fatalf("target hashes: %v", err)
	}
	_, err = up.GetTargetInfo("app.tar.gz")
	if err == nil || err.Error() != "target app.tar.gz not found" {
		t.Fatalf("unlisted target: got %v, want go-tuf's target-not-found", err)
	}
	served := up.GetTrustedMetadataSet().Targets[metadata.TARGETS].Signed
	if served.Delegations != nil {
		t.Fatalf("served targets.json delegates: %+v", served.Delegations)
	}
	del, err := policy.SigningRoles(&served)
	if err != nil || len(del.Roles) != 2 {
		t.Fatalf("served targets.json should carry the two signing roles in %s, got %+v (%v)", policy.SigningRolesField, del, err)
	}
	if n := len(up.GetTrustedMetadataSet().Targets); n != 1 {
		t.Errorf("the updater loaded %d targets metadata, want only targets.json", n)
	}
}

// TestGoTUFTargetLookupLegacyDelegation records why the format changed: a
// policy written before (signing roles as TUF delegations of "*") makes the
// lookup of any target not listed at the top level fail in go-tuf; such a
// policy still loads, and its next edit moves the roles to signing_roles.
func TestGoTUFTargetLookupLegacyDelegation(t *testing.T) {
	legacy := func(d *author.Draft) {
		del, err := policy.SigningRoles(&d.Targets.Signed)
		must(t, err)
		for i := range del.Roles {
			del.Roles[i].Paths, del.Roles[i].Terminating = []string{"*"}, true
		}
		delete(d.Targets.Signed.UnrecognizedFields, policy.SigningRolesField)
		d.Targets.Signed.Delegations = del
	}
	r := newLookupRepo(t, legacy)
	up := r.updater(t)
	if _, err := up.GetTargetInfo("app.tar.gz"); err == nil || !strings.Contains(err.Error(), "not found in snapshot") {
		t.Fatalf("legacy delegation: got %v, want go-tuf's 'role … not found in snapshot'", err)
	}
	d, err := author.OpenDraft(r.dir, time.Now())
	must(t, err)
	must(t, d.SetGate("staging", []string{"originator"}, 0))
	del, err := policy.SigningRoles(&d.Targets.Signed)
	if d.Targets.Signed.Delegations != nil || err != nil || len(del.Roles) != 2 {
		t.Fatalf("after an edit: delegations %+v, signing roles %+v (%v)", d.Targets.Signed.Delegations, del, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTUFFilesServedAsPublished: root.json and targets.json (latest and by
// version) are served byte for byte as the trust directory holds them, not
// re-encoded.
func TestTUFFilesServedAsPublished(t *testing.T) {
	r := newLookupRepo(t, nil)
	for name, file := range map[string]string{
		"root.json":      filepath.Join(r.dir, policy.RootFile),
		"1.root.json":    policy.HistoryPath(r.dir, "root", 1),
		"targets.json":   filepath.Join(r.dir, policy.TargetsFile),
		"1.targets.json": filepath.Join(r.dir, policy.TargetsFile),
	} {
		want, err := os.ReadFile(file)
		must(t, err)
		got, err := r.repo.File(name)
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not served as %s holds it (%d bytes served, %d on disk)", name, file, len(got), len(want))
		}
	}
}
