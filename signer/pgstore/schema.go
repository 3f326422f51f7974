package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// migrations[i] takes the schema from version i to version i+1. Append
// only: a released migration never changes.
//
// Times are integer nanoseconds since the Unix epoch (NULL: not set), so
// they round-trip exactly. signatures.seq orders a request's signatures as
// they were accepted (writers to one request are serialized by its row
// lock). Subjects are JSON kept as TEXT, byte for byte.
var migrations = []string{
	`CREATE TABLE requests (
		id             TEXT PRIMARY KEY,
		gate           TEXT NOT NULL,
		policy_version BIGINT NOT NULL,
		policy_digest  TEXT NOT NULL,
		payload_type   TEXT NOT NULL,
		payload        BYTEA NOT NULL,
		subjects       TEXT NOT NULL,
		requester      TEXT NOT NULL,
		created_ns     BIGINT NOT NULL,
		expires_ns     BIGINT,
		state          TEXT NOT NULL CHECK (state IN ('pending', 'complete', 'cancelled', 'expired')),
		state_reason   TEXT NOT NULL,
		updated_ns     BIGINT NOT NULL,
		envelope       BYTEA,
		CHECK ((state = 'complete') = (envelope IS NOT NULL))
	);
	CREATE INDEX requests_created ON requests (created_ns, id);
	CREATE INDEX requests_state ON requests (state, created_ns, id);
	CREATE INDEX requests_expires ON requests (expires_ns);
	CREATE TABLE signatures (
		seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		request_id  TEXT NOT NULL REFERENCES requests (id),
		key_id      TEXT NOT NULL,
		identity    TEXT NOT NULL,
		role        TEXT NOT NULL,
		sig         BYTEA NOT NULL,
		received_ns BIGINT NOT NULL,
		UNIQUE (request_id, identity)
	);`,
	// 2: the transparency log, written in the transaction of each change.
	storesql.LedgerSchema("BYTEA", "BIGINT") + `
	CREATE FUNCTION quorate_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'the log is append-only'; END $$;
	CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
		FOR EACH ROW EXECUTE FUNCTION quorate_ledger_append_only();
	CREATE TRIGGER ledger_hashes_append_only BEFORE UPDATE OR DELETE ON ledger_hashes
		FOR EACH ROW EXECUTE FUNCTION quorate_ledger_append_only();`,
	// 3: the highest trusted root and policy versions, so deleting
	// trusted-versions.json does not let an older trust directory in.
	storesql.TrustedSchema("BIGINT"),
	// 4: the webhook outbox, written in the transaction of each event.
	storesql.OutboxSchema("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA", "BIGINT"),
	// 5: policy change requests, shared by replicas; a publication
	// updates its change in the transaction of its ledger entries.
	storesql.ChangesSchema("BIGINT") + "; " + storesql.ChangesIndex,
	// 6: the superseded state.
	`ALTER TABLE requests DROP CONSTRAINT requests_state_check;
	ALTER TABLE requests ADD CONSTRAINT requests_state_check CHECK (state IN ('pending', 'complete', 'cancelled', 'expired', 'superseded'));`,
	// 7: room in each page of requests for the new version of a row that
	// a signature updates, so the update is HOT (heap-only: no index
	// changes; updated_ns and envelope are in no index).
	`ALTER TABLE requests SET (fillfactor = 70)`,
	// 8: witness and timestamp evidence of checkpoints, shared by replicas
	// (signer/witnessing.SharedEvidence): self-authenticating JSON, the
	// first complete evidence of each checkpoint size.
	`CREATE TABLE witness_evidence (
		size     BIGINT PRIMARY KEY,
		evidence BYTEA NOT NULL
	)`,
	// 9: the pending deliveries in ID order, which a claim walks until it
	// has found enough heads (the first pending delivery of an endpoint and
	// request): with thousands pending it visited them all, 33 ms a claim
	// inside a batch holding the log lock, against 0.3 ms.
	storesql.OutboxPendingIndex,
}

// migrationLock is the key of the advisory lock that serializes migrations
// of replicas starting at once.
const migrationLock = 0x71756f72617465 // "quorate"

// Migrate connects to the database at url and brings its schema to the
// newest version this binary knows, for a separate `quorate migrate` step.
// It fails with [ErrSchemaTooNew] if the schema is newer. [Open] does the
// same.
func Migrate(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("pgstore: connecting to migrate: %w", wrapError(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, _, err := migrate(ctx, conn); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return nil
}

// migrate applies pending migrations in one transaction, holding
// migrationLock, and returns the versions before and after.
func migrate(ctx context.Context, conn *pgx.Conn) (from, to int, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("starting migration: %w", wrapError(err))
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	steps := []struct {
		what, sql string
	}{
		{"taking the migration lock", fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, migrationLock)},
		{"creating the schema version table", `CREATE TABLE IF NOT EXISTS quorate_schema (version INTEGER NOT NULL)`},
	}
	for _, step := range steps {
		if _, err := tx.Exec(ctx, step.sql); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", step.what, wrapError(err))
		}
	}
	switch err := tx.QueryRow(ctx, `SELECT version FROM quorate_schema`).Scan(&from); {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, `INSERT INTO quorate_schema (version) VALUES (0)`); err != nil {
			return 0, 0, fmt.Errorf("recording the schema version: %w", wrapError(err))
		}
	case err != nil:
		return 0, 0, fmt.Errorf("reading the schema version: %w", wrapError(err))
	}
	if err := storesql.CheckSchemaVersion("quorate_schema", from, len(migrations)); err != nil {
		return 0, 0, err
	}
	for v := from; v < len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return 0, 0, fmt.Errorf("migrating schema to version %d: %w", v+1, wrapError(err))
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE quorate_schema SET version = $1`, len(migrations)); err != nil {
		return 0, 0, fmt.Errorf("recording the schema version: %w", wrapError(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("committing migration: %w", wrapError(err))
	}
	return from, len(migrations), nil
}
