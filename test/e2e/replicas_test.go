package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

// openRequests opens n requests for gate "load" through cl, signed by signers[0].
func openRequests(t *testing.T, cl *client.Client, trust *policy.Trust, signers []hsm.Signer, n int, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for r := 0; r < n; r++ {
		v, err := cl.Open(ctx, openInput(t, trust, signers[0], fmt.Sprintf("%s-%06d", prefix, r), r+1))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	return ids
}

// openInput is a request for gate "load" with ID prefix-TIME over one
// subject whose digest is the number digest, signed by s.
func openInput(t *testing.T, trust *policy.Trust, s hsm.Signer, prefix string, digest int) client.OpenInput {
	t.Helper()
	now := time.Now().UTC()
	st, err := attest.NewStatement([]attest.Subject{{Name: "a", Digest: map[string]string{"sha256": fmt.Sprintf("%064x", digest)}}},
		attest.Predicate{Gate: "load", Policy: attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
			RequestID: fmt.Sprintf("%s-%d", prefix, now.UnixNano()), Created: now, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sigFor(t, s, st)}
}

func sigFor(t *testing.T, s hsm.Signer, statement []byte) attest.Signature {
	t.Helper()
	raw, err := s.Sign(context.Background(), dsse.PAE(attest.PayloadType, statement))
	if err != nil {
		t.Fatal(err)
	}
	return attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}
}

// statementOf fetches a request's payload.
func statementOf(t *testing.T, cl *client.Client, id string) []byte {
	t.Helper()
	v, err := cl.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := attest.DecodeBase64(v.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplicasRacingFinalSignaturesEmitOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("replica tests skipped in -short mode")
	}
	store := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	dir := t.TempDir()
	signers, _, trustDir := fixture(t, dir, 4)
	logKey := addLogKey(t, dir, trustDir, 4)
	trust, err := policy.Load(trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	a := startServer(t, dir, trustDir, "--store", store, "--log-key", logKey)
	b := startServer(t, dir, trustDir, "--store", store, "--log-key", logKey)
	ca, cb := &client.Client{BaseURL: a.url}, &client.Client{BaseURL: b.url}
	ids := openRequests(t, ca, trust, signers, 15, "race")
	ctx := context.Background()
	for _, id := range ids {
		st := statementOf(t, cb, id)
		if _, err := cb.Sign(ctx, id, sigFor(t, signers[1], st)); err != nil {
			t.Fatal(err)
		}
		// signers 2 and 3 complete the request: race them through both replicas.
		var completed atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, cl := range []*client.Client{ca, cb} {
			sig := sigFor(t, signers[2+i], st)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := cl.Sign(ctx, id, sig)
				if err != nil {
					t.Errorf("request %s: %v", id, err)
					return
				}
				if res.Completed {
					completed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if completed.Load() != 1 {
			t.Fatalf("request %s: %d replicas report emitting the composite, want exactly 1", id, completed.Load())
		}
		ea, err := ca.Attestation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		eb, err := cb.Attestation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if string(ea) != string(eb) {
			t.Fatalf("request %s: the replicas serve different composites", id)
		}
	}
	// One log: audited through A, then through B against what A showed
	// (the state file), the checkpoints of the two replicas are consistent.
	state := filepath.Join(dir, "log.state")
	for _, srv := range []*server{a, b, a} {
		if out, code := runCLI(t, dir, nil, "log", "verify", "--coordinator", srv.url, "--trust", trustDir, "--state", state); code != 0 {
			t.Fatalf("log verify through %s: exit %d\n%s", srv.url, code, out)
		}
		checkLoggedRows(t, &client.Client{BaseURL: srv.url}, ids)
	}
}

// loadThrough posts signatures of signers[1:] for every request, choosing a
// replica per attempt; on a transport error or a retryable answer it tries
// again (possibly on another replica). A duplicate answer to a retry means
// an earlier, unacknowledged attempt was stored: it counts as acknowledged
// only once the store says so. It returns the acknowledged (request, key) pairs.
func loadThrough(t *testing.T, clients func(attempt int) *client.Client, signers []hsm.Signer, ids []string, stmts map[string][]byte, deadline time.Time, onAck func(acked int)) ([]ack, int64) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var acked []ack
	var unavailable atomic.Int64 // 503 answers with Retry-After
	var wg sync.WaitGroup
	for k := 1; k < len(signers); k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for _, id := range ids {
				sig := sigFor(t, signers[k], stmts[id])
				for attempt := 0; ; attempt++ {
					if time.Now().After(deadline) {
						t.Errorf("gave up on request %s key %d", id, k)
						return
					}
					_, err := clients(attempt+k).Sign(ctx, id, sig)
					var ae *client.APIError
					if err == nil || (errors.As(err, &ae) && ae.Code == "duplicate" && attempt > 0) {
						mu.Lock()
						acked = append(acked, ack{id, sig.KeyID})
						n := len(acked)
						mu.Unlock()
						if onAck != nil {
							onAck(n)
						}
						break
					}
					if errors.As(err, &ae) && ae.Code == "not_pending" && attempt > 0 {
						// An earlier, unacknowledged attempt may have been
						// stored and completed the request: look.
						if v, gerr := clients(attempt+1).Get(ctx, id); gerr == nil && hasKey(v, sig.KeyID) {
							mu.Lock()
							acked = append(acked, ack{id, sig.KeyID})
							mu.Unlock()
							break
						}
					}
					if errors.As(err, &ae) && !ae.Retryable() {
						t.Errorf("request %s: %v", id, err)
						return
					}
					if errors.As(err, &ae) && ae.Status == 503 {
						unavailable.Add(1)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(k)
	}
	wg.Wait()
	return acked, unavailable.Load()
}

func checkAcked(t *testing.T, cl *client.Client, acked []ack) {
	t.Helper()
	ctx := context.Background()
	found := map[ack]bool{}
	seen := map[string]bool{}
	for _, a := range acked {
		if seen[a.id] {
			continue
		}
		seen[a.id] = true
		v, err := cl.Get(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range v.Signatures {
			found[ack{a.id, s.KeyID}] = true
		}
		if v.State == signer.Complete {
			if _, err := cl.Attestation(ctx, a.id); err != nil {
				t.Errorf("complete request %s has no composite: %v", a.id, err)
			}
		}
	}
	lost := 0
	for _, a := range acked {
		if !found[a] {
			lost++
		}
	}
	t.Logf("acknowledged %d signatures; lost %d", len(acked), lost)
	if lost > 0 {
		t.Fatalf("%d acknowledged signatures lost", lost)
	}
}

// twoReplicas starts two coordinators on one fresh PostgreSQL schema, opens n
// requests for 5 signers and returns the requests' statements by ID.
func twoReplicas(t *testing.T, n int, prefix string) (a, b *server, signers []hsm.Signer, ids []string, stmts map[string][]byte) {
	t.Helper()
	store := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	dir := t.TempDir()
	signers, trust, trustDir := fixture(t, dir, 5)
	a, b = startServer(t, dir, trustDir, "--store", store), startServer(t, dir, trustDir, "--store", store)
	ca := &client.Client{BaseURL: a.url}
	ids = openRequests(t, ca, trust, signers, n, prefix)
	stmts = map[string][]byte{}
	for _, id := range ids {
		stmts[id] = statementOf(t, ca, id)
	}
	return a, b, signers, ids, stmts
}

func TestReplicaKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("replica tests skipped in -short mode")
	}
	a, b, signers, ids, stmts := twoReplicas(t, 40, "kill")
	ca, cb := &client.Client{BaseURL: a.url}, &client.Client{BaseURL: b.url}
	var aDead atomic.Bool
	var once sync.Once
	killAt := func(n int) {
		if n >= len(ids)*(len(signers)-1)/3 {
			once.Do(func() { a.kill9(t); aDead.Store(true) })
		}
	}
	pick := func(n int) *client.Client {
		if n%2 == 0 && !aDead.Load() {
			return ca
		}
		return cb
	}
	acked, _ := loadThrough(t, pick, signers, ids, stmts, time.Now().Add(60*time.Second), killAt)
	if !aDead.Load() {
		t.Fatal("the load finished before replica A was killed; make it longer")
	}
	checkAcked(t, cb, acked)
}

// TestDatabaseRestartUnderLoad restarts PostgreSQL while two replicas take
// signatures. It disturbs every other PostgreSQL user of the machine, so it
// runs only with QUORATE_TEST_PG_RESTART=1 (make test runs it on its own).
func TestDatabaseRestartUnderLoad(t *testing.T) {
	if os.Getenv("QUORATE_TEST_PG_RESTART") != "1" {
		t.Skip("set QUORATE_TEST_PG_RESTART=1 to restart PostgreSQL under load (make test does, serially)")
	}
	a, b, signers, ids, stmts := twoReplicas(t, 60, "restart")
	ca, cb := &client.Client{BaseURL: a.url}, &client.Client{BaseURL: b.url}
	// The restart starts after the first acknowledgements, and from then
	// on each acknowledgement waits a little until the restart is over, so
	// the load spans the restart however fast the coordinators are.
	restarted := make(chan error, 1)
	over := make(chan struct{})
	var (
		once  sync.Once
		began atomic.Bool
	)
	restartAt := func(n int) {
		if n < 20 {
			return
		}
		once.Do(func() {
			began.Store(true)
			go func() {
				defer close(over)
				out, err := exec.Command("bash", "-c", `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -1) main restart`).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("%v: %s", err, out)
				}
				restarted <- err
			}()
		})
		select {
		case <-over:
		case <-time.After(50 * time.Millisecond):
		}
	}
	pick := func(n int) *client.Client {
		if n%2 == 0 {
			return ca
		}
		return cb
	}
	acked, unavailable := loadThrough(t, pick, signers, ids, stmts, time.Now().Add(90*time.Second), restartAt)
	if !began.Load() {
		t.Fatal("the load ended before the restart began")
	}
	<-over
	if err := <-restarted; err != nil {
		t.Fatalf("restarting PostgreSQL: %v", err)
	}
	t.Logf("clients saw %d retryable 503 answers during the restart", unavailable)
	if unavailable == 0 {
		t.Error("no client saw a retryable 503 while the database restarted")
	}
	checkAcked(t, cb, acked)
	for _, id := range ids {
		v, err := ca.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("replica A after the restart: %v", err)
		}
		if len(v.Signatures) != len(signers) || v.State != signer.Complete {
			t.Errorf("request %s: %d signatures, state %s; want all %d and complete", id, len(v.Signatures), v.State, len(signers))
		}
	}
}

func hasKey(v *client.RequestView, keyID string) bool {
	for _, s := range v.Signatures {
		if s.KeyID == keyID {
			return true
		}
	}
	return false
}
