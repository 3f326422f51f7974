package timestamp_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/timestamp/tsatest"
	"github.com/quorate-dev/quorate/ledger/witness"
)

const origin = "quorate.example/log"

// TestCheckpointEvidence is the coordinator's path and the verifier's: a
// batch of entries is appended, the checkpoint over it is timestamped by
// two real TSAs, and each entry's time is proven by its inclusion proof in
// that checkpoint.
func TestCheckpointEvidence(t *testing.T) {
	ctx := context.Background()
	ca1, ca2 := tsatest.NewCA(t, "Root 1"), tsatest.NewCA(t, "Root 2")
	trust := mustTrust(t, 2, authority("tsa-one", ca1), authority("tsa-two", ca2))
	var clients []*timestamp.Client
	for _, ca := range []*tsatest.CA{ca1, ca2} {
		_, srv := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA under " + ca.Cert.Subject.CommonName})
		c, err := timestamp.NewClient(srv.URL, timestamp.WithTrust(trust))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}

	store := ledger.NewMemoryStorage()
	log, err := ledger.New(ledger.Config{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	ev := ledger.Event{Type: ledger.RequestCancelled, RequestID: "req-1"}
	if _, err := log.Append(ctx, store, ev, ev, ev, ev, ev); err != nil {
		t.Fatal(err)
	}
	cp, err := log.Checkpoint(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	evidence, err := timestamp.StampCheckpoint(ctx, clients, cp)
	if err != nil {
		t.Fatal(err)
	}
	// It travels as JSON in a bundle.
	data, err := evidence.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var carried timestamp.Evidence
	if err := json.Unmarshal(data, &carried); err != nil {
		t.Fatal(err)
	}
	// A later entry, not covered by the timestamped checkpoint.
	if _, err := log.Append(ctx, store, ev); err != nil {
		t.Fatal(err)
	}
	_, raw, err := ledger.ReadEntries(ctx, store, 0, 6)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < cp.Size; i++ {
		proof, err := ledger.InclusionProof(ctx, store, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		r, err := trust.VerifyEntry(&carried, origin, i, raw[i], proof)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if len(r.Stamps) != 2 || r.Time.IsZero() {
			t.Fatalf("entry %d: %v at %v", i, r.TSAs(), r.Time)
		}
	}

	proof0, _ := ledger.InclusionProof(ctx, store, 0, cp.Size)
	proof5, _ := ledger.InclusionProof(ctx, store, 5, 6)
	otherText := []byte(carried.Checkpoint)
	otherText[0] = 'Q' // another origin
	for _, tc := range []struct {
		name  string
		ev    *timestamp.Evidence
		index int64
		entry []byte
		proof tlog.RecordProof
		want  error
	}{
		{"entry after the timestamped checkpoint", &carried, 5, raw[5], proof5, timestamp.ErrEvidence},
		{"another entry's bytes", &carried, 0, raw[1], proof0, timestamp.ErrEvidence},
		{"checkpoint of another log", &timestamp.Evidence{Checkpoint: string(otherText), Tokens: carried.Tokens}, 0, raw[0], proof0, timestamp.ErrEvidence},
		{"tokens over another checkpoint", &timestamp.Evidence{Checkpoint: carried.Checkpoint, Tokens: evidenceFor(t, clients, log, store).Tokens}, 0, raw[0], proof0, timestamp.ErrBadImprint},
		{"one token only", &timestamp.Evidence{Checkpoint: carried.Checkpoint, Tokens: carried.Tokens[:1]}, 0, raw[0], proof0, timestamp.ErrNotEnoughTSAs},
		{"no evidence", nil, 0, raw[0], proof0, timestamp.ErrEvidence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trust.VerifyEntry(tc.ev, origin, tc.index, tc.entry, tc.proof)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// evidenceFor timestamps the log's current checkpoint.
func evidenceFor(t *testing.T, clients []*timestamp.Client, log *ledger.Log, store ledger.Storage) *timestamp.Evidence {
	t.Helper()
	cp, err := log.Checkpoint(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := timestamp.StampCheckpoint(context.Background(), clients, cp)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestEarliest(t *testing.T) {
	revoked := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	backdated := timestamp.LogBound(revoked.Add(-24 * time.Hour)) // the coordinator's clock set back
	witnessed, err := timestamp.WitnessBound(&witness.Result{Met: true, Need: 2, WitnessedBy: revoked.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tsa := timestamp.Bound{Source: timestamp.SourceTSA, Time: revoked.Add(30 * time.Minute)}
	early := timestamp.Bound{Source: timestamp.SourceTSA, Time: revoked.Add(-time.Minute)}
	for _, tc := range []struct {
		name    string
		rule    timestamp.Rule
		bounds  []timestamp.Bound
		want    timestamp.Bound
		counts  bool // counts under a key revoked since `revoked`
		wantErr error
	}{
		{"log time alone decides without independent time", timestamp.LogTimeRule(), []timestamp.Bound{backdated, witnessed}, backdated, true, nil},
		{"back-dated log time ignored once witnesses are required", timestamp.IndependentRule(true, false), []timestamp.Bound{backdated, witnessed}, witnessed, false, nil},
		{"earliest of witnesses and TSAs", timestamp.IndependentRule(false, false), []timestamp.Bound{witnessed, tsa, backdated}, tsa, false, nil},
		{"a TSA bound before the revocation counts", timestamp.IndependentRule(false, true), []timestamp.Bound{witnessed, early}, early, true, nil},
		{"required TSA time missing", timestamp.IndependentRule(true, true), []timestamp.Bound{witnessed}, timestamp.Bound{}, false, timestamp.ErrNoTrustedTime},
		{"only untrusted sources", timestamp.IndependentRule(false, false), []timestamp.Bound{backdated}, timestamp.Bound{}, false, timestamp.ErrNoTrustedTime},
		{"trusting the log while requiring TSAs is refused", timestamp.Rule{Trusted: []timestamp.Source{timestamp.SourceLog, timestamp.SourceTSA}, Required: []timestamp.Source{timestamp.SourceTSA}}, []timestamp.Bound{backdated, tsa}, timestamp.Bound{}, false, timestamp.ErrTrust},
		{"required but not trusted is refused", timestamp.Rule{Trusted: []timestamp.Source{timestamp.SourceWitnesses}, Required: []timestamp.Source{timestamp.SourceTSA}}, []timestamp.Bound{witnessed}, timestamp.Bound{}, false, timestamp.ErrTrust},
		{"empty rule is refused", timestamp.Rule{}, []timestamp.Bound{witnessed}, timestamp.Bound{}, false, timestamp.ErrTrust},
		{"a trusted bound without a time", timestamp.IndependentRule(false, false), []timestamp.Bound{{Source: timestamp.SourceTSA}}, timestamp.Bound{}, false, timestamp.ErrNoTrustedTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := timestamp.Earliest(tc.rule, tc.bounds...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.Before(revoked) != tc.counts {
				t.Fatalf("Before(revocation) = %v, want %v", got.Before(revoked), tc.counts)
			}
		})
	}
	if _, err := timestamp.WitnessBound(&witness.Result{Met: false, Need: 2}); !errors.Is(err, timestamp.ErrNoTrustedTime) {
		t.Errorf("witness quorum not met: %v", err)
	}
	if _, err := timestamp.TSABound(&timestamp.Result{Need: 2}); !errors.Is(err, timestamp.ErrNoTrustedTime) {
		t.Errorf("TSA quorum not met: %v", err)
	}
}

// TestBackdatedEntry is the attack independent time answers: a coordinator
// with its clock set back logs a signature by a key revoked an hour ago as
// if it were made two hours ago. By its logged time the signature counts;
// once timestamped time is required, it does not, because the TSA dated
// the checkpoint that includes it now. An honest entry, revoked later,
// still counts.
func TestBackdatedEntry(t *testing.T) {
	ctx := context.Background()
	ca := tsatest.NewCA(t, "Root 1")
	trust := mustTrust(t, 1, authority("tsa-one", ca))
	_, srv := tsaUnder(t, ca, tsatest.TSAOptions{Name: "TSA One"})
	c, err := timestamp.NewClient(srv.URL, timestamp.WithTrust(trust))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	revokedAt := now.Add(-time.Hour)
	store := ledger.NewMemoryStorage()
	backdating, err := ledger.New(ledger.Config{Origin: origin, Clock: func() time.Time { return now.Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := backdating.Append(ctx, store, ledger.Event{Type: ledger.RequestCancelled, RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := backdating.Checkpoint(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	evidence, err := timestamp.StampCheckpoint(ctx, []*timestamp.Client{c}, cp)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := ledger.ReadEntries(ctx, store, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := ledger.InclusionProof(ctx, store, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	res, err := trust.VerifyEntry(evidence, origin, 0, raw[0], proof)
	if err != nil {
		t.Fatal(err)
	}
	tsaBound, err := timestamp.TSABound(res)
	if err != nil {
		t.Fatal(err)
	}
	logged := timestamp.LogBound(entries[0].Time)

	byLog, err := timestamp.Earliest(timestamp.LogTimeRule(), logged, tsaBound)
	if err != nil {
		t.Fatal(err)
	}
	if !byLog.Before(revokedAt) {
		t.Fatalf("logged time %v should (wrongly) count before the revocation at %v", byLog.Time, revokedAt)
	}
	independent, err := timestamp.Earliest(timestamp.IndependentRule(false, true), logged, tsaBound)
	if err != nil {
		t.Fatal(err)
	}
	if independent.Source != timestamp.SourceTSA || independent.Before(revokedAt) {
		t.Fatalf("with TSA time required the back-dated entry counts: %+v (revoked at %v)", independent, revokedAt)
	}
	if !independent.Before(now.Add(time.Hour)) {
		t.Fatalf("an entry timestamped now does not count under a revocation in an hour: %+v", independent)
	}
}
