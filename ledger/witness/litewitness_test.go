package witness_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/ledger/witness/witnesstest"
)

// These tests run real witnesses: litewitness (filippo.io/torchwood
// v0.6.1), each behind its own ssh-agent, on loopback.

func TestCosignQuorum(t *testing.T) {
	f := newLog(t)
	ws, clients := startWitnesses(t, f, 3)
	q := quorum(t, 2, verifiers(ws...)...)

	const rounds = 12
	var toQuorum, toAll []time.Duration
	for round := range rounds {
		f.grow(t, 1+round%4)
		before := time.Now().Truncate(time.Second)
		signed := f.sign(t)
		start := time.Now()
		sub := witness.Submit(ctx, signed, f.prover(), clients...)
		toAll = append(toAll, time.Since(start))
		for name, err := range sub.Errors {
			t.Fatalf("round %d: witness %s: %v", round, name, err)
		}
		// Checkpoint to quorum: the second-fastest witness's answer.
		lat := make([]time.Duration, 0, len(sub.Latency))
		for _, d := range sub.Latency {
			lat = append(lat, d)
		}
		slices.Sort(lat)
		toQuorum = append(toQuorum, lat[q.N()-1])

		r, err := q.Verify(sub.Note)
		if err != nil {
			t.Fatalf("round %d: Verify: %v", round, err)
		}
		if !r.Met || len(r.Cosignatures) != 3 || len(r.Missing) != 0 || r.Err() != nil {
			t.Fatalf("round %d: result %+v, want all three cosignatures", round, r)
		}
		if got := r.Signed(); !slices.Equal(got, []string{"witness.example/w1", "witness.example/w2", "witness.example/w3"}) {
			t.Fatalf("round %d: signed by %v", round, got)
		}
		// The bound lies within the second-smallest timestamp's second, and
		// the witnesses signed after the checkpoint was made.
		ts := []time.Time{r.Cosignatures[0].Time, r.Cosignatures[1].Time, r.Cosignatures[2].Time}
		slices.SortFunc(ts, time.Time.Compare)
		if want := ts[1].Add(time.Second - time.Nanosecond); !r.WitnessedBy.Equal(want) {
			t.Fatalf("round %d: WitnessedBy %v, want %v", round, r.WitnessedBy, want)
		}
		if ts[0].Before(before) {
			t.Fatalf("round %d: cosignature at %v, before the checkpoint was signed (%v)", round, ts[0], before)
		}
		// golang.org/x/mod/sumdb/note opens the cosigned note with the
		// witnesses' verifiers too.
		vs := verifiers(ws...)
		if n, err := note.Open(sub.Note, note.VerifierList(vs[0], vs[1], vs[2])); err != nil || len(n.Sigs) != 3 {
			t.Fatalf("round %d: note.Open with the witness verifiers: %v", round, err)
		}
		// The log's own signature still verifies on the cosigned note.
		if _, err := ledger.OpenCheckpoint(sub.Note, origin, f.signer.Public()); err != nil {
			t.Fatalf("round %d: cosigned note no longer opens as a checkpoint: %v", round, err)
		}
	}
	slices.Sort(toQuorum)
	slices.Sort(toAll)
	t.Logf("cosigning latency over %d checkpoints, 3 litewitnesses on loopback: checkpoint to quorum 2: median %v, max %v; to all 3: median %v, max %v",
		rounds, toQuorum[rounds/2], toQuorum[rounds-1], toAll[rounds/2], toAll[rounds-1])

	// A client that does not know what the witness recorded (a restarted
	// coordinator) learns it from the 409 and re-proves.
	f.grow(t, 3)
	signed := f.sign(t)
	fresh := ws[0].Client(t)
	cs, err := fresh.AddCheckpoint(ctx, signed, f.prover())
	if err != nil {
		t.Fatalf("AddCheckpoint from a client with no recorded size: %v", err)
	}
	if cs.Witness != "witness.example/w1" {
		t.Fatalf("cosignature by %s", cs.Witness)
	}
}

func TestWitnessDown(t *testing.T) {
	f := newLog(t)
	ws, clients := startWitnesses(t, f, 3)
	q := quorum(t, 2, verifiers(ws...)...)

	f.grow(t, 2)
	if sub := witness.Submit(ctx, f.sign(t), f.prover(), clients...); len(sub.Errors) != 0 {
		t.Fatalf("all up: %v", sub.Errors)
	}

	// One witness down: its cosignature is missing, the quorum still met.
	ws[2].Stop()
	f.grow(t, 3)
	sub := witness.Submit(ctx, f.sign(t), f.prover(), clients...)
	if err := sub.Errors["witness.example/w3"]; !errors.Is(err, witness.ErrUnavailable) {
		t.Fatalf("witness down: error %v, want ErrUnavailable", err)
	}
	r, err := q.Verify(sub.Note)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Met || !slices.Equal(r.Missing, []string{"witness.example/w3"}) || len(r.Cosignatures) != 2 {
		t.Fatalf("one witness down: %+v, want quorum met without w3", r)
	}

	// Two down: the quorum is not met, and the error says who is missing.
	ws[1].Stop()
	f.grow(t, 1)
	sub = witness.Submit(ctx, f.sign(t), f.prover(), clients...)
	if len(sub.Cosignatures) != 1 || len(sub.Errors) != 2 {
		t.Fatalf("two down: %d cosignatures, errors %v", len(sub.Cosignatures), sub.Errors)
	}
	r, err = q.Verify(sub.Note)
	if err != nil {
		t.Fatal(err)
	}
	if r.Met || !r.WitnessedBy.IsZero() {
		t.Fatalf("two down: %+v, want no quorum and no witnessed time", r)
	}
	if err := r.Err(); !errors.Is(err, witness.ErrNoQuorum) || !strings.Contains(err.Error(), "witness.example/w2, witness.example/w3") {
		t.Fatalf("Err() = %v", err)
	}

	// Back up: the next checkpoint is cosigned by all three again; the
	// witnesses that missed checkpoints catch up through consistency proofs
	// from the size they recorded.
	ws[1].Restart()
	ws[2].Restart()
	f.grow(t, 5)
	sub = witness.Submit(ctx, f.sign(t), f.prover(), clients...)
	if len(sub.Errors) != 0 {
		t.Fatalf("after restart: %v", sub.Errors)
	}
	if r, err := q.Verify(sub.Note); err != nil || len(r.Cosignatures) != 3 {
		t.Fatalf("after restart: %+v %v", r, err)
	}
}

// TestForkRefused: a coordinator that rewrites its log (same key, same
// origin, other entries) gets no cosignature for the forked checkpoint.
func TestForkRefused(t *testing.T) {
	honest := newLog(t)
	ws, clients := startWitnesses(t, honest, 2)
	q := quorum(t, 2, verifiers(ws...)...)
	honest.grow(t, 4)
	if sub := witness.Submit(ctx, honest.sign(t), honest.prover(), clients...); len(sub.Errors) != 0 {
		t.Fatal(sub.Errors)
	}

	cases := []struct {
		name    string
		size    int
		clients func() []*witness.Client
	}{
		{"same size, other root", 4, func() []*witness.Client { return clients }},
		{"rewritten and grown", 9, func() []*witness.Client { return clients }},
		{"rewritten, submitted by a client that must learn the size", 9, func() []*witness.Client {
			return []*witness.Client{ws[0].Client(t), ws[1].Client(t)}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fork := newLogWith(t, honest.signer, fmt.Sprintf("fork%d", i))
			fork.grow(t, tc.size)
			signed := fork.sign(t)
			sub := witness.Submit(ctx, signed, fork.prover(), tc.clients()...)
			if len(sub.Cosignatures) != 0 {
				t.Fatalf("witnesses cosigned the forked checkpoint: %+v", sub.Cosignatures)
			}
			for name, err := range sub.Errors {
				if !errors.Is(err, witness.ErrProofRejected) && !errors.Is(err, witness.ErrConflict) {
					t.Errorf("witness %s: %v, want ErrProofRejected or ErrConflict", name, err)
				}
				t.Logf("witness %s refused the fork: %v", name, err)
			}
			r, err := q.Verify(sub.Note)
			if err != nil {
				t.Fatal(err)
			}
			if r.Met || len(r.Missing) != 2 {
				t.Fatalf("forked checkpoint verifies: %+v", r)
			}
		})
	}

	// The witnesses still follow the honest log.
	honest.grow(t, 2)
	if sub := witness.Submit(ctx, honest.sign(t), honest.prover(), clients...); len(sub.Errors) != 0 {
		t.Fatalf("honest log after the fork attempts: %v", sub.Errors)
	}
}

func TestWitnessRefusesLog(t *testing.T) {
	f := newLog(t)
	ws, _ := startWitnesses(t, f, 1)
	cases := []struct {
		name string
		log  func(t *testing.T) *logFixture
		is   []error
	}{
		// c2sp.org/tlog-witness says 403 for a signature by no trusted key.
		{"checkpoint signed by another key", func(t *testing.T) *logFixture { return newLog(t) }, []error{witness.ErrForbidden}},
		// The spec says 404 for an unknown origin; litewitness v0.6.1
		// answers 403.
		{"unknown origin", func(t *testing.T) *logFixture {
			g := newLog(t)
			l, err := ledger.New(ledger.Config{Origin: "other.example/log", Signer: f.signer})
			if err != nil {
				t.Fatal(err)
			}
			g.log = l
			return g
		}, []error{witness.ErrUnknownLog, witness.ErrForbidden}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.log(t)
			g.grow(t, 2)
			_, err := ws[0].Client(t).AddCheckpoint(ctx, g.sign(t), g.prover())
			ok := false
			for _, is := range tc.is {
				ok = ok || errors.Is(err, is)
			}
			if !ok {
				t.Fatalf("error %v, want one of %v", err, tc.is)
			}
			var he *witness.HTTPError
			if !errors.As(err, &he) || he.Witness != "witness.example/w1" {
				t.Fatalf("error %v is not an HTTPError naming the witness", err)
			}
		})
	}
}

// TestForgedCosignatures: cosignatures that must not count, on a checkpoint
// cosigned by real witnesses.
func TestForgedCosignatures(t *testing.T) {
	f := newLog(t)
	ws, clients := startWitnesses(t, f, 3)
	w1, w2, outsider := ws[0], ws[1], ws[2]
	q := quorum(t, 2, w1.Verifier, w2.Verifier) // w3 is not in the policy

	f.grow(t, 5)
	earlier := witness.Submit(ctx, f.sign(t), f.prover(), clients...)
	f.grow(t, 1)
	signed := f.sign(t)
	sub := witness.Submit(ctx, signed, f.prover(), clients[0], clients[2]) // w1 and the outsider
	if len(sub.Errors) != 0 {
		t.Fatal(sub.Errors)
	}
	line := func(s *witness.Submission, name string) string {
		for _, c := range s.Cosignatures {
			if c.Witness == name {
				return c.Line
			}
		}
		t.Fatalf("no cosignature by %s", name)
		return ""
	}
	w1Line := line(sub, w1.Name)
	tamper := func(l string, at int) string {
		// Flip one bit in the decoded signature (key ID 4 bytes, timestamp
		// 8 bytes, signature 64 bytes).
		fields := strings.Fields(l)
		raw, err := base64Decode(fields[2])
		if err != nil {
			t.Fatal(err)
		}
		raw[at] ^= 1
		return fields[0] + " " + fields[1] + " " + base64Encode(raw) + "\n"
	}
	_, forgerKey := newEd25519(t)

	cases := []struct {
		name  string
		lines []string
		is    error // nil: Verify succeeds but the quorum is not met
	}{
		{"signature bit flipped", []string{tamper(w1Line, 20), line(sub, outsider.Name)}, witness.ErrBadCosignature},
		{"timestamp back-dated", []string{tamper(w1Line, 11)}, witness.ErrBadCosignature},
		{"cosignature of another checkpoint", []string{line(earlier, w2.Name)}, witness.ErrBadCosignature},
		{"foreign witness counted", []string{w1Line, line(sub, outsider.Name)}, nil},
		{"same name, other key", []string{w1Line, cosignLine(w2.Name, forgerKey, time.Now().Unix(), noteText(t, signed))}, nil},
		{"one witness twice", []string{w1Line, w1Line}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			note := append(bytes.Clone(signed), strings.Join(tc.lines, "")...)
			r, err := q.Verify(note)
			if tc.is != nil {
				if !errors.Is(err, tc.is) {
					t.Fatalf("Verify: %v, want %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if r.Met || len(r.Cosignatures) != 1 || r.Cosignatures[0].Witness != w1.Name {
				t.Fatalf("result %+v, want only w1 counted and no quorum", r)
			}
		})
	}
}

// TestVerifierKeyFromLitewitness: the vkey litewitness prints parses to the
// key ssh-keygen made (witnesstest.Start checks the converse).
func TestVerifierKeyFromLitewitness(t *testing.T) {
	f := newLog(t)
	w := witnesstest.Start(t, "witness.example/solo", origin, f.vkey)
	v, err := witness.ParseVerifierKey(w.VKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != w.Name || v.KeyHash() != w.Verifier.KeyHash() || !bytes.Equal(v.Key(), w.Verifier.Key()) {
		t.Fatalf("parsed %s, want %s", v, w.Verifier)
	}
}
