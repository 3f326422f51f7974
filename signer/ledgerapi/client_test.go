package ledgerapi_test

import (
	"errors"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer/client"
)

// TestClientAuditLog runs signer/client's audit against the real server of
// a SQLite ledger: more entries than one page, consistency with an earlier
// note, and the refusals a verifier relies on.
func TestClientAuditLog(t *testing.T) {
	key := testkeys.Signer(t, hsm.Ed25519)
	n := client.MaxLogEntries + 5 // two pages of entries
	_, srv := newLedger(t, key, n)
	ts := serve(t, srv)
	c := &client.Client{BaseURL: ts.URL, HTTP: ts.Client()}
	lk := client.LogKey{Origin: origin, Key: key.Public()}

	first, err := c.AuditLog(t.Context(), lk, nil)
	if err != nil {
		t.Fatalf("first audit: %v", err)
	}
	if first.Checkpoint.Size != int64(n) {
		t.Fatalf("audited %d entries, want %d", first.Checkpoint.Size, n)
	}
	if _, err := c.AuditLog(t.Context(), lk, first.Note); err != nil {
		t.Fatalf("audit against the previous note: %v", err)
	}

	other := testkeys.Signer(t, hsm.Ed25519)
	_, forked := newLedger(t, key, n+1) // another history under the same key
	fts := serve(t, forked)
	fc := &client.Client{BaseURL: fts.URL, HTTP: fts.Client()}
	for _, tc := range []struct {
		name     string
		c        *client.Client
		lk       client.LogKey
		previous []byte
		want     error
		code     string
	}{
		{"another log key", c, client.LogKey{Origin: origin, Key: other.Public()}, nil, ledger.ErrCheckpointSignature, "checkpoint_signature"},
		{"another origin (the note names its signer by origin)", c, client.LogKey{Origin: "elsewhere.test/log", Key: key.Public()}, nil, ledger.ErrCheckpointSignature, "checkpoint_signature"},
		{"a history not extending the previous note", fc, lk, first.Note, ledger.ErrFork, "fork"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.AuditLog(t.Context(), tc.lk, tc.previous)
			if !errors.Is(err, tc.want) || ledger.Code(err) != tc.code {
				t.Fatalf("err = %v (code %q), want %v (code %q)", err, ledger.Code(err), tc.want, tc.code)
			}
		})
	}
}

func TestClientProveEntry(t *testing.T) {
	key := testkeys.Signer(t, hsm.Ed25519)
	_, srv := newLedger(t, key, 5)
	ts := serve(t, srv)
	c := &client.Client{BaseURL: ts.URL, HTTP: ts.Client()}
	lk := client.LogKey{Origin: origin, Key: key.Public()}
	p, err := c.ProveEntry(t.Context(), lk, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Entry.Index != 3 || p.Checkpoint.Size != 5 || len(p.Proof) == 0 {
		t.Fatalf("proof of entry %d in size %d with %d hashes", p.Entry.Index, p.Checkpoint.Size, len(p.Proof))
	}
	if err := ledger.VerifyInclusion(p.Proof, 3, p.Checkpoint.Size, p.Checkpoint.Root, p.Raw); err != nil {
		t.Fatalf("the returned proof does not verify: %v", err)
	}
	for _, index := range []int64{5, 99, -1} {
		if _, err := c.ProveEntry(t.Context(), lk, index); !errors.Is(err, client.ErrEntryNotInLog) {
			t.Errorf("entry %d of 5: err = %v, want ErrEntryNotInLog", index, err)
		}
	}
}
