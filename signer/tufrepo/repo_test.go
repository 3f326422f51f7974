package tufrepo_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

// servedRepo is a trust directory at root 1, policy 1, served by a
// tufrepo.Repo with a clock the test moves.
type servedRepo struct {
	dir, state string
	online     keys.Signer
	now        atomic.Pointer[time.Time]
	trust      *policy.Trust
}

func newServedRepo(t *testing.T) *servedRepo {
	t.Helper()
	start := time.Now()
	s := &servedRepo{dir: t.TempDir(), state: t.TempDir(), online: testkeys.Signer(t, hsm.ECDSAP256)}
	s.now.Store(&start)
	admin := testkeys.Signer(t, hsm.ECDSAP256)
	d, err := author.Init(s.dir, []*keys.PublicKey{admin.Public()}, 1, start, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	must(t, d.SetOnlineKey(s.online.Public(), 0))
	must(t, d.SetRole("originator", []*keys.PublicKey{testkeys.Signer(t, hsm.Ed25519).Public()}, 1, 0))
	must(t, d.SetGate("staging", []string{"originator"}, 0))
	_, err = d.Sign(context.Background(), admin)
	must(t, err)
	must(t, d.Save())
	s.trust, err = policy.Load(s.dir, policy.LoadOptions{Now: start})
	must(t, err)
	return s
}

func (s *servedRepo) clock() time.Time { return *s.now.Load() }

func (s *servedRepo) open() (*tufrepo.Repo, error) {
	return tufrepo.New(context.Background(), tufrepo.Config{Signer: s.online, StateDir: s.state, Source: policy.DirSource(s.dir), Clock: s.clock}, s.trust)
}

// TestFileNames: every name a TUF client may ask for, and names it must
// not be served anything for.
func TestFileNames(t *testing.T) {
	s := newServedRepo(t)
	repo, err := s.open()
	must(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tuf/{file}", tufrepo.Handler(repo, zap.NewNop()))
	var none *tufrepo.Repo
	mux.HandleFunc("GET /none/{file}", tufrepo.Handler(none, zap.NewNop()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		name   string
		file   string
		status int
	}{
		{"CurrentRoot", "root.json", 200},
		{"RootByVersion", "1.root.json", 200},
		{"NextRootNotYet", "2.root.json", 404},
		{"RootVersionZero", "0.root.json", 404},
		{"RootVersionLeadingZero", "01.root.json", 404},
		{"RootVersionNegative", "-1.root.json", 404},
		{"Timestamp", "timestamp.json", 200},
		{"TimestampByVersionNotServed", "1.timestamp.json", 404},
		{"Snapshot", "snapshot.json", 200},
		{"SnapshotByVersion", "1.snapshot.json", 200},
		{"SnapshotNotYet", "2.snapshot.json", 404},
		{"Targets", "targets.json", 200},
		{"TargetsByVersion", "1.targets.json", 200},
		{"TargetsNotYet", "2.targets.json", 404},
		{"NoSuffix", "root", 404},
		{"UnknownRole", "mirrors.json", 404},
		{"DelegatedRoleNotServed", "1.originator.json", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + "/v1/tuf/" + c.file)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("GET %s: %d, want %d", c.file, resp.StatusCode, c.status)
			}
		})
	}
	t.Run("NoRepositoryIsNotFound", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/none/root.json")
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("GET without a repository: %d, want 404", resp.StatusCode)
		}
	})
}

// TestTimestampRenewedBeforeExpiry: Refresh re-signs the timestamp once
// half its life has passed, with a higher version, and not before.
func TestTimestampRenewedBeforeExpiry(t *testing.T) {
	s := newServedRepo(t)
	repo, err := s.open()
	must(t, err)
	_, _, _, ts1 := repo.Versions()
	must(t, repo.Refresh(context.Background()))
	if _, _, _, ts := repo.Versions(); ts != ts1 {
		t.Fatalf("timestamp re-signed while fresh: version %d -> %d", ts1, ts)
	}
	later := s.clock().Add(tufrepo.DefaultTimestampExpiry/2 + time.Minute)
	s.now.Store(&later)
	must(t, repo.Refresh(context.Background()))
	if _, _, _, ts := repo.Versions(); ts <= ts1 {
		t.Fatalf("timestamp past half its life not renewed: version %d -> %d", ts1, ts)
	}
}

// TestStateSurvivesRestartAndRefusesCorruption: versions served are kept
// in the state directory (a restart never goes back to version 1), and a
// corrupt state file stops the repository rather than restart at 1.
func TestStateSurvivesRestartAndRefusesCorruption(t *testing.T) {
	s := newServedRepo(t)
	repo, err := s.open()
	must(t, err)
	later := s.clock().Add(tufrepo.DefaultTimestampExpiry)
	s.now.Store(&later)
	must(t, repo.Refresh(context.Background()))
	_, _, _, ts := repo.Versions()
	again, err := s.open()
	must(t, err)
	if _, _, _, ts2 := again.Versions(); ts2 < ts {
		t.Fatalf("after a restart the timestamp version went back from %d to %d", ts, ts2)
	}
	files, err := filepath.Glob(filepath.Join(s.state, "*", "timestamp.json"))
	must(t, err)
	if len(files) != 1 {
		t.Fatalf("state files: %v, want one timestamp.json", files)
	}
	must(t, os.WriteFile(files[0], []byte("{not json"), 0o600))
	if _, err := s.open(); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("opening over a corrupt timestamp state: %v, want an error naming it corrupt", err)
	}
}
