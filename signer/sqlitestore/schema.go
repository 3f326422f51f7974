package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// migrations[i] takes the schema from version i to version i+1. Append
// only: a released migration never changes.
//
// Times are integer nanoseconds since the Unix epoch (NULL: not set).
// signatures.seq orders a request's signatures as they were accepted.
var migrations = []string{
	`CREATE TABLE requests (
		id             TEXT PRIMARY KEY,
		gate           TEXT NOT NULL,
		policy_version INTEGER NOT NULL,
		policy_digest  TEXT NOT NULL,
		payload_type   TEXT NOT NULL,
		payload        BLOB NOT NULL,
		subjects       TEXT NOT NULL,
		requester      TEXT NOT NULL,
		created_ns     INTEGER NOT NULL,
		expires_ns     INTEGER,
		state          TEXT NOT NULL CHECK (state IN ('pending', 'complete', 'cancelled', 'expired')),
		state_reason   TEXT NOT NULL,
		updated_ns     INTEGER NOT NULL,
		envelope       BLOB,
		CHECK ((state = 'complete') = (envelope IS NOT NULL))
	) STRICT;
	CREATE INDEX requests_created ON requests (created_ns, id);
	CREATE INDEX requests_state ON requests (state, created_ns, id);
	CREATE INDEX requests_expires ON requests (expires_ns);
	CREATE TABLE signatures (
		seq         INTEGER PRIMARY KEY,
		request_id  TEXT NOT NULL REFERENCES requests (id),
		key_id      TEXT NOT NULL,
		identity    TEXT NOT NULL,
		role        TEXT NOT NULL,
		sig         BLOB NOT NULL,
		received_ns INTEGER NOT NULL,
		UNIQUE (request_id, identity)
	) STRICT;`,
	// 2: the transparency log, written in the transaction of each change.
	storesql.LedgerSchema("BLOB", "INTEGER") + `
	CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
	CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
	CREATE TRIGGER ledger_hashes_no_update BEFORE UPDATE ON ledger_hashes BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
	CREATE TRIGGER ledger_hashes_no_delete BEFORE DELETE ON ledger_hashes BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;`,
	// 3: the highest trusted root and policy versions, so deleting
	// trusted-versions.json does not let an older trust directory in.
	storesql.TrustedSchema("INTEGER") + " STRICT",
	// 4: the webhook outbox, written in the transaction of each event.
	storesql.OutboxSchema("INTEGER PRIMARY KEY", "BLOB", "INTEGER"),
	// 5: policy change requests, shared by replicas; a publication
	// updates its change in the transaction of its ledger entries.
	storesql.ChangesSchema("INTEGER") + " STRICT; " + storesql.ChangesIndex,
	// 6: the superseded state. SQLite cannot change a CHECK constraint, so
	// requests is rebuilt; signatures (which references it) is set aside
	// and restored, with its seq, so no foreign key is ever dangling.
	`CREATE TABLE requests_new (
		id             TEXT PRIMARY KEY,
		gate           TEXT NOT NULL,
		policy_version INTEGER NOT NULL,
		policy_digest  TEXT NOT NULL,
		payload_type   TEXT NOT NULL,
		payload        BLOB NOT NULL,
		subjects       TEXT NOT NULL,
		requester      TEXT NOT NULL,
		created_ns     INTEGER NOT NULL,
		expires_ns     INTEGER,
		state          TEXT NOT NULL CHECK (state IN ('pending', 'complete', 'cancelled', 'expired', 'superseded')),
		state_reason   TEXT NOT NULL,
		updated_ns     INTEGER NOT NULL,
		envelope       BLOB,
		log_index      INTEGER,
		emitted_index  INTEGER,
		CHECK ((state = 'complete') = (envelope IS NOT NULL))
	) STRICT;
	INSERT INTO requests_new (id, gate, policy_version, policy_digest, payload_type, payload, subjects, requester,
		created_ns, expires_ns, state, state_reason, updated_ns, envelope, log_index, emitted_index)
		SELECT id, gate, policy_version, policy_digest, payload_type, payload, subjects, requester,
		created_ns, expires_ns, state, state_reason, updated_ns, envelope, log_index, emitted_index FROM requests;
	CREATE TABLE signatures_kept AS SELECT seq, request_id, key_id, identity, role, sig, received_ns, log_index FROM signatures;
	DROP TABLE signatures;
	DROP TABLE requests;
	ALTER TABLE requests_new RENAME TO requests;
	CREATE INDEX requests_created ON requests (created_ns, id);
	CREATE INDEX requests_state ON requests (state, created_ns, id);
	CREATE INDEX requests_expires ON requests (expires_ns);
	CREATE TABLE signatures (
		seq         INTEGER PRIMARY KEY,
		request_id  TEXT NOT NULL REFERENCES requests (id),
		key_id      TEXT NOT NULL,
		identity    TEXT NOT NULL,
		role        TEXT NOT NULL,
		sig         BLOB NOT NULL,
		received_ns INTEGER NOT NULL,
		log_index   INTEGER,
		UNIQUE (request_id, identity)
	) STRICT;
	INSERT INTO signatures (seq, request_id, key_id, identity, role, sig, received_ns, log_index)
		SELECT seq, request_id, key_id, identity, role, sig, received_ns, log_index FROM signatures_kept ORDER BY seq;
	DROP TABLE signatures_kept;`,
	// 7: the pending deliveries in ID order, which a webhook claim walks
	// (see pgstore's migration 9).
	storesql.OutboxPendingIndex,
	// 8: an event's outbox row no longer keeps a copy of its entry, which
	// a claim reads from ledger_entries (storesql.Dialect.
	// OutboxEntriesFromLog): a binary from before refuses this version
	// rather than send such rows without their entry. The view shows each
	// delivery with its entry, for operators.
	`CREATE VIEW webhook_outbox_entries AS
		SELECT o.id, o.endpoint, o.message_id, o.idx, o.state,
			COALESCE(o.entry, (SELECT l.entry FROM ledger_entries l WHERE l.idx = o.idx AND o.reminder IS NULL)) AS entry
		FROM webhook_outbox o`,
}

// migrate brings the schema to the newest version, in one transaction.
func (s *Store) migrate(ctx context.Context) (err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: starting migration: %w", s.path, dialect.Wrap(err))
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS quorate_schema (version INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("sqlitestore: %s: creating the schema version table: %w", s.path, dialect.Wrap(err))
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM quorate_schema`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO quorate_schema (version) VALUES (0)`); err != nil {
			return fmt.Errorf("sqlitestore: %s: recording the schema version: %w", s.path, dialect.Wrap(err))
		}
	case err != nil:
		return fmt.Errorf("sqlitestore: %s: reading the schema version: %w", s.path, dialect.Wrap(err))
	}
	if err := storesql.CheckSchemaVersion("sqlitestore: "+s.path, version, len(migrations)); err != nil {
		return err
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("sqlitestore: %s: migrating schema to version %d: %w", s.path, v+1, dialect.Wrap(err))
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE quorate_schema SET version = $1`, len(migrations)); err != nil {
		return fmt.Errorf("sqlitestore: %s: recording the schema version: %w", s.path, dialect.Wrap(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: %s: committing migration: %w", s.path, dialect.Wrap(err))
	}
	if version < len(migrations) {
		s.log.Info("schema migrated", zap.Int("from", version), zap.Int("to", len(migrations)))
	}
	return nil
}
