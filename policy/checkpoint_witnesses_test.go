package policy_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// testWitness is a witness key: its verifier (as the policy names it) and
// its private key, to cosign.
type testWitness struct {
	v    *witness.Verifier
	priv ed25519.PrivateKey
}

func newTestWitness(t *testing.T, name string) testWitness {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := witness.NewVerifier(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return testWitness{v, priv}
}

// cosign returns w's cosignature/v1 line over the checkpoint text at ts
// (c2sp.org/tlog-cosignature), or one over other text when forged.
func (w testWitness) cosign(text string, ts int64, forged bool) string {
	msg := text
	if forged {
		msg = text + "x"
	}
	sig := ed25519.Sign(w.priv, witness.CosignedMessage(ts, []byte(msg)))
	b := binary.BigEndian.AppendUint32(nil, w.v.KeyHash())
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	return fmt.Sprintf("\u2014 %s %s\n", w.v.Name(), base64.StdEncoding.EncodeToString(append(b, sig...)))
}

// TestCheckpointWitnesses checks the cosignatures of a checkpoint against
// the policy's witnesses and quorum (2 of 3): who cosigned, the time bound
// when the quorum is met, a quorum not met as evidence (not an error), and
// a policy witness's cosignature that does not verify as an error (fail
// closed); a witness the policy does not name counts for nothing.
func TestCheckpointWitnesses(t *testing.T) {
	ws := []testWitness{newTestWitness(t, "w1.example/a"), newTestWitness(t, "w2.example/b"), newTestWitness(t, "w3.example/c")}
	trust := loadEdited(t, func(d *author.Draft) error {
		for _, w := range ws {
			if err := d.AddWitness(w.v.Name(), w.v.String(), 0); err != nil {
				return err
			}
		}
		return d.SetWitnessQuorum(2, 0)
	})
	// A checkpoint signed by a log key (the witnesses check only their own
	// lines; the log key's is checked before this).
	skey, _, err := note.GenerateKey(rand.Reader, "log.example/quorate")
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	text := "log.example/quorate\n42\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"
	signed, err := note.Sign(&note.Note{Text: text}, logSigner)
	if err != nil {
		t.Fatal(err)
	}
	outsider := newTestWitness(t, "w9.example/z")
	t0, t1 := int64(1_800_000_000), int64(1_800_000_100)
	cases := []struct {
		name    string
		lines   []string
		met     bool
		signed  []string
		missing []string
		by      int64 // the time bound's second when met
		err     bool
	}{
		{"quorum met by two", []string{ws[0].cosign(text, t1, false), ws[2].cosign(text, t0, false)}, true,
			[]string{"w1.example/a", "w3.example/c"}, []string{"w2.example/b"}, t1, false},
		{"all three: the second earliest bounds", []string{ws[0].cosign(text, t1+50, false), ws[1].cosign(text, t0, false), ws[2].cosign(text, t1, false)}, true,
			[]string{"w1.example/a", "w2.example/b", "w3.example/c"}, nil, t1, false},
		{"one of two", []string{ws[1].cosign(text, t0, false)}, false, []string{"w2.example/b"}, []string{"w1.example/a", "w3.example/c"}, 0, false},
		{"a witness the policy does not name", []string{ws[1].cosign(text, t0, false), outsider.cosign(text, t0, false)}, false,
			[]string{"w2.example/b"}, []string{"w1.example/a", "w3.example/c"}, 0, false},
		{"none", nil, false, nil, []string{"w1.example/a", "w2.example/b", "w3.example/c"}, 0, false},
		{"a policy witness's line that does not verify", []string{ws[0].cosign(text, t0, false), ws[1].cosign(text, t0, true)}, false, nil, nil, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := slices.Clone(signed)
			for _, l := range tc.lines {
				n = append(n, l...)
			}
			ev, err := trust.CheckpointWitnesses(n)
			if tc.err {
				if err == nil || !errors.Is(err, policy.ErrNotWitnessed) {
					t.Fatalf("CheckpointWitnesses = %+v, %v; want an error of kind ErrNotWitnessed", ev, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(ev.Signed)
			if ev.Met != tc.met || ev.Quorum != 2 || !slices.Equal(ev.Signed, tc.signed) || !slices.Equal(ev.Missing, tc.missing) {
				t.Fatalf("evidence %+v; want met %v, signed %q, missing %q", ev, tc.met, tc.signed, tc.missing)
			}
			switch {
			case tc.met && (ev.Err() != nil || ev.WitnessedBy.Unix() != tc.by):
				t.Errorf("met: Err %v, witnessed by %v (second %d), want nil and second %d", ev.Err(), ev.WitnessedBy, ev.WitnessedBy.Unix(), tc.by)
			case !tc.met && (!errors.Is(ev.Err(), policy.ErrNotWitnessed) || !ev.WitnessedBy.IsZero()):
				t.Errorf("not met: Err %v, witnessed by %v; want ErrNotWitnessed and no bound", ev.Err(), ev.WitnessedBy)
			}
		})
	}
	var none *policy.WitnessEvidence
	if !errors.Is(none.Err(), policy.ErrNotWitnessed) {
		t.Errorf("nil evidence: Err %v, want ErrNotWitnessed", none.Err())
	}
}
