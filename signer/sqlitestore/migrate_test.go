package sqlitestore_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

// TestMigrateKeepsRequestsForSuperseded opens a database written at schema
// version 5 (before the superseded state): the migration that rebuilds the
// requests table keeps every request, signature (with its order and log
// index) and foreign key, and a request can then be superseded.
func TestMigrateKeepsRequestsForSuperseded(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlitestore.FileName)+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	stmts := append(sqlitestore.MigrationsBefore(5),
		`CREATE TABLE quorate_schema (version INTEGER NOT NULL) STRICT`,
		`INSERT INTO quorate_schema (version) VALUES (5)`,
		`INSERT INTO requests (id, gate, policy_version, policy_digest, payload_type, payload, subjects, requester,
			created_ns, expires_ns, state, state_reason, updated_ns, envelope, log_index, emitted_index)
			VALUES ('old-pending', 'release', 1, 'd', 'pt', x'00ff', '[]', 'k', 10, 99, 'pending', '', 11, NULL, 0, NULL),
			       ('old-done', 'release', 1, 'd', 'pt', x'01', '[]', 'k', 12, 99, 'complete', '', 13, x'e0', 3, 5)`,
		`INSERT INTO signatures (seq, request_id, key_id, identity, role, sig, received_ns, log_index)
			VALUES (7, 'old-pending', 'k', 'id-1', 'maintainer', x'aa', 10, 1),
			       (9, 'old-done', 'k', 'id-1', 'maintainer', x'bb', 12, 4),
			       (8, 'old-pending', 'k2', 'id-2', 'maintainer', x'cc', 11, 2)`)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("building a version 5 database: %v\n%s", err, s)
		}
	}
	db.Close()

	s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("migrating a version 5 database: %v", err)
	}
	defer s.Close()
	r, err := s.GetRequest(t.Context(), "old-pending")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != signer.Pending || string(r.Payload) != "\x00\xff" || r.LogIndex != 0 || r.EmittedIndex != -1 ||
		len(r.Signatures) != 2 || r.Signatures[0].Identity != "id-1" || r.Signatures[1].Identity != "id-2" || r.Signatures[1].LogIndex != 2 {
		t.Fatalf("request after migration: %+v", r)
	}
	done, err := s.GetRequest(t.Context(), "old-done")
	if err != nil || done.State != signer.Complete || string(done.Envelope) != "\xe0" || done.EmittedIndex != 5 || len(done.Signatures) != 1 {
		t.Fatalf("complete request after migration: %+v, %v", done, err)
	}
	// The signatures table still refers to requests and orders by seq.
	p := signer.Partial{KeyID: "k3", Identity: "id-3", Role: "maintainer", Sig: []byte{1}, Received: done.Created}
	got, err := s.AddSignature(t.Context(), "old-pending", p, func(r *signer.Request) (signer.Finish, error) { return signer.Finished(r, nil), nil })
	if err != nil || len(got.Signatures) != 3 || got.Signatures[2].Identity != "id-3" {
		t.Fatalf("AddSignature after migration: %+v, %v", got, err)
	}
	if _, err := s.AddSignature(t.Context(), "no-such", p, func(r *signer.Request) (signer.Finish, error) { return signer.Finished(r, nil), nil }); err == nil {
		t.Fatal("a signature on a missing request was stored after migration")
	}
	// The rebuilt table's CHECK constraint accepts the new state.
	ch := &client.Change{ID: client.ChangeIDPrefix + strings.Repeat("0", 32), State: client.ChangePending, Created: done.Created}
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	_, err = s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
		return signer.ChangeUpdate{Supersede: &signer.Supersession{Gates: []string{"release"}, OpenedBefore: 2, Reason: "superseded by v2", At: done.Created,
			Logged: func(r *signer.Request) ([]ledger.Event, error) {
				return []ledger.Event{signer.SupersededEvent(r, c.ID, 2, r.StateReason)}, nil
			}}}, nil
	})
	if err != nil {
		t.Fatalf("superseding after migration: %v", err)
	}
	if r, err := s.GetRequest(t.Context(), "old-pending"); err != nil || r.State != signer.Superseded || r.StateReason != "superseded by v2" {
		t.Fatalf("request after superseding: %+v, %v", r, err)
	}
}
