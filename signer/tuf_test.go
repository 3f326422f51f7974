package signer_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/policychange"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

// tufWorld is a coordinator serving its policy as a TUF repository (online
// key: online) and taking policy change requests, over real HTTP. The
// policy starts at version 1 with one role (dev) and a gate.
type tufWorld struct {
	t                  *testing.T
	dir, state, db     string
	admin, online, dev party
	dev2               party
	root1              []byte
	svc                *signer.Coordinator
	repo               *tufrepo.Repo
	store              *sqlitestore.Store
	client             *client.Client
	url                string
	now                atomic.Pointer[time.Time]

	// override, when set, answers instead of the coordinator: a network
	// attacker replaying old metadata.
	mu       sync.Mutex
	override map[string][]byte
}

func newTUFWorld(t *testing.T) *tufWorld {
	t.Helper()
	return newTUFWorldLedger(t, nil)
}

// newTUFWorldLedger is newTUFWorld whose coordinator keeps ledger lg (nil:
// none) in its SQLite store, in directory w.db.
func newTUFWorldLedger(t *testing.T, lg *ledger.Log) *tufWorld {
	t.Helper()
	w := &tufWorld{t: t, override: map[string][]byte{}}
	w.admin, w.online, w.dev = testkeys.Signer(t, hsm.ECDSAP256), testkeys.Signer(t, hsm.ECDSAP256), testkeys.Signer(t, hsm.Ed25519)
	w.dev2 = testkeys.Signer(t, hsm.ECDSAP256)
	start := time.Now()
	w.now.Store(&start)
	w.dir, w.state = t.TempDir(), t.TempDir()
	d, err := author.Init(w.dir, []*keys.PublicKey{w.admin.Public()}, 1, start, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	must(t, d.SetOnlineKey(w.online.Public(), 0))
	must(t, d.SetRole("originator", []*keys.PublicKey{w.dev.Public(), w.dev2.Public()}, 1, 0))
	must(t, d.SetGate("staging", []string{"originator"}, 0))
	_, err = d.Sign(context.Background(), w.admin)
	must(t, err)
	must(t, d.Save())
	w.root1, err = os.ReadFile(policy.HistoryPath(w.dir, "root", 1))
	must(t, err)
	trust, err := policy.Load(w.dir, policy.LoadOptions{Now: start})
	must(t, err)
	w.db = t.TempDir()
	w.store, err = sqlitestore.Open(context.Background(), w.db, sqlitestore.Options{Ledger: lg})
	must(t, err)
	t.Cleanup(func() { w.store.Close() })
	w.repo = w.openRepo(trust)
	w.svc, err = signer.New(signer.Config{Trust: trust, Store: w.store, Clock: w.clock, TUF: w.repo, Ledger: lg})
	must(t, err)
	pc := policychange.Config{Coordinator: w.svc, Store: w.store, Clock: w.clock, TrustDir: w.dir, StateDir: w.state}
	if lg != nil {
		pc.Ledger = w.store
	}
	changes, err := policychange.New(pc)
	must(t, err)
	api := signer.NewAPI(signer.HTTPConfig{Coordinator: w.svc, PolicyChanges: changes})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		body, ok := w.override[strings.TrimPrefix(r.URL.Path, "/v1/tuf/")]
		w.mu.Unlock()
		if ok {
			_, _ = rw.Write(body)
			return
		}
		api.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	w.client = &client.Client{BaseURL: srv.URL, HTTP: srv.Client()}
	return w
}

func (w *tufWorld) clock() time.Time { return *w.now.Load() }

func (w *tufWorld) advance(d time.Duration) {
	n := w.now.Load().Add(d)
	w.now.Store(&n)
}

func (w *tufWorld) openRepo(trust *policy.Trust) *tufrepo.Repo {
	w.t.Helper()
	repo, err := tufrepo.New(context.Background(), tufrepo.Config{Signer: w.online, StateDir: w.state, Source: policy.DirSource(w.dir), Clock: w.clock}, trust)
	must(w.t, err)
	return repo
}

// refresh runs go-tuf's updater from the cache in cacheDir (bootstrapped
// with root version 1) and returns the targets it trusts.
func (w *tufWorld) refresh(cacheDir string, refTime time.Time) (*metadata.Metadata[metadata.TargetsType], error) {
	w.t.Helper()
	trusted := w.root1
	if data, err := os.ReadFile(filepath.Join(cacheDir, "root.json")); err == nil {
		trusted = data
	}
	cfg, err := config.New(w.url+"/v1/tuf/", trusted)
	must(w.t, err)
	cfg.LocalMetadataDir = cacheDir
	cfg.LocalTargetsDir = filepath.Join(cacheDir, "targets")
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	if !refTime.IsZero() {
		up.UnsafeSetRefTime(refTime)
	}
	if err := up.Refresh(); err != nil {
		return nil, err
	}
	return up.GetTrustedMetadataSet().Targets[metadata.TARGETS], nil
}

func (w *tufWorld) file(name string) []byte {
	w.t.Helper()
	data, err := w.client.TUFFile(context.Background(), name)
	must(w.t, err)
	return data
}

// publishOffline adds a role the offline way (edit, sign, save) and
// reloads the coordinator, as SIGHUP does.
func (w *tufWorld) publishOffline(role string, k *keys.PublicKey) {
	w.t.Helper()
	d, err := author.OpenDraft(w.dir, w.clock())
	must(w.t, err)
	must(w.t, d.SetRole(role, []*keys.PublicKey{k}, 1, 0))
	_, err = d.Sign(context.Background(), w.admin)
	must(w.t, err)
	must(w.t, d.Save())
	trust, err := policy.Load(w.dir, policy.LoadOptions{Now: w.clock(), Trusted: w.svc.Trust().Versions()})
	must(w.t, err)
	must(w.t, w.svc.SetTrust(trust))
}

func TestTUFUpdaterFollowsPolicy(t *testing.T) {
	w := newTUFWorld(t)
	cache := t.TempDir()
	got, err := w.refresh(cache, time.Time{})
	must(t, err)
	if got.Signed.Version != 1 {
		t.Fatalf("updater trusts targets version %d, want 1", got.Signed.Version)
	}
	oldTimestamp, oldSnapshot := w.file("timestamp.json"), w.file("1.snapshot.json")

	w.publishOffline("integrator", testkeys.Signer(t, hsm.ECDSAP256).Public())
	got, err = w.refresh(cache, time.Time{})
	must(t, err)
	if got.Signed.Version != 2 {
		t.Fatalf("after the policy update the updater trusts targets version %d, want 2", got.Signed.Version)
	}
	if _, ok := got.Signed.UnrecognizedFields[policy.HistoryField]; !ok {
		t.Fatal("targets served through TUF lost quorate's history field")
	}

	t.Run("RolledBackTimestamp", func(t *testing.T) {
		w.mu.Lock()
		w.override["timestamp.json"] = oldTimestamp
		w.mu.Unlock()
		defer w.clearOverrides()
		_, err := w.refresh(cache, time.Time{})
		var bad *metadata.ErrBadVersionNumber
		if !errors.As(err, &bad) {
			t.Fatalf("a rolled-back timestamp was not refused as a bad version: %v", err)
		}
	})
	t.Run("RolledBackSnapshot", func(t *testing.T) {
		// Even with the online key, a timestamp naming an older snapshot
		// version is refused.
		ts := metadata.Timestamp(w.clock().Add(time.Hour))
		ts.Signed.Version = 1000
		ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(1)
		canon, err := cjson.EncodeCanonical(ts.Signed)
		must(t, err)
		sig, err := w.online.Sign(context.Background(), canon)
		must(t, err)
		ts.Signatures = []metadata.Signature{{KeyID: w.online.Public().ID(), Signature: sig}}
		forged, err := ts.ToBytes(false)
		must(t, err)
		w.mu.Lock()
		w.override["timestamp.json"], w.override["1.snapshot.json"] = forged, oldSnapshot
		w.mu.Unlock()
		defer w.clearOverrides()
		_, err = w.refresh(cache, time.Time{})
		var bad *metadata.ErrBadVersionNumber
		if !errors.As(err, &bad) {
			t.Fatalf("a timestamp naming a rolled-back snapshot was not refused as a bad version: %v", err)
		}
	})
	t.Run("FrozenTimestamp", func(t *testing.T) {
		_, err := w.refresh(t.TempDir(), time.Now().Add(tufrepo.DefaultTimestampExpiry+time.Hour))
		var exp *metadata.ErrExpiredMetadata
		if !errors.As(err, &exp) {
			t.Fatalf("an expired timestamp was not refused: %v", err)
		}
	})
	t.Run("UnknownRootVersion404", func(t *testing.T) {
		_, err := w.client.TUFFile(context.Background(), "3.root.json")
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			t.Fatalf("a root version not yet published: %v, want 404", err)
		}
	})
}

func (w *tufWorld) clearOverrides() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.override)
}

func TestTUFVersionsPersistAcrossRestarts(t *testing.T) {
	w := newTUFWorld(t)
	_, _, snap1, ts1 := w.repo.Versions()

	// A restart with the same policy serves the same metadata.
	again := w.openRepo(w.svc.Trust())
	if _, _, s, ts := again.Versions(); s != snap1 || ts != ts1 {
		t.Fatalf("restart: snapshot %d timestamp %d, want %d and %d", s, ts, snap1, ts1)
	}
	// Half the timestamp's lifetime later, a refresh re-signs it alone.
	w.advance(tufrepo.DefaultTimestampExpiry/2 + time.Minute)
	must(t, w.repo.Refresh(context.Background()))
	_, _, snap2, ts2 := w.repo.Versions()
	if snap2 != snap1 || ts2 != ts1+1 {
		t.Fatalf("refresh: snapshot %d timestamp %d, want %d and %d", snap2, ts2, snap1, ts1+1)
	}
	// A new policy version after a restart gets higher versions still.
	w.publishOffline("integrator", testkeys.Signer(t, hsm.ECDSAP256).Public())
	again = w.openRepo(w.svc.Trust())
	targets, s3, ts3 := func() (int64, int64, int64) { _, tg, s, ts := again.Versions(); return tg, s, ts }()
	if targets != 2 || s3 <= snap2 || ts3 <= ts2 {
		t.Fatalf("after a new policy: targets %d snapshot %d timestamp %d, want 2, >%d, >%d", targets, s3, ts3, snap2, ts2)
	}
}

func TestTUFRepoRefusesOtherOnlineKey(t *testing.T) {
	w := newTUFWorld(t)
	other := testkeys.Signer(t, hsm.ECDSAP256)
	_, err := tufrepo.New(context.Background(), tufrepo.Config{Signer: other, StateDir: t.TempDir(), Source: policy.DirSource(w.dir)}, w.svc.Trust())
	if !errors.Is(err, author.ErrOnlineKey) {
		t.Fatalf("a key the root does not name for snapshot and timestamp: %v, want ErrOnlineKey", err)
	}
}
