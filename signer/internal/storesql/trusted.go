package storesql

import (
	"context"

	"github.com/quorate-dev/quorate/policy"
)

// TrustedSchema is the DDL of the one-row table keeping the highest trusted
// root and policy versions (BIGINT spelt by the caller), without the final
// semicolon so SQLite can append STRICT.
func TrustedSchema(bigint string) string {
	return `CREATE TABLE trusted_versions (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		root    ` + bigint + ` NOT NULL CHECK (root >= 0),
		targets ` + bigint + ` NOT NULL CHECK (targets >= 0)
	)`
}

// TrustedVersions implements [signer.Store.TrustedVersions] in q.
func (s Store) TrustedVersions(ctx context.Context, q Querier) (policy.Trusted, error) {
	var t policy.Trusted
	rows, err := q.Query(ctx, `SELECT root, targets FROM trusted_versions WHERE id = 1`)
	if err != nil {
		return t, s.errorf(err, "reading the trusted versions")
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&t.Root, &t.Targets); err != nil {
			return t, s.errorf(err, "reading the trusted versions")
		}
	}
	if err := rows.Err(); err != nil {
		return t, s.errorf(err, "reading the trusted versions")
	}
	return t, nil
}

// RaiseTrustedVersions implements [signer.Store.RaiseTrustedVersions] in q.
func (s Store) RaiseTrustedVersions(ctx context.Context, q Querier, t policy.Trusted) (policy.Trusted, error) {
	if _, err := q.Exec(ctx, `INSERT INTO trusted_versions (id, root, targets) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET
			root = CASE WHEN excluded.root > trusted_versions.root THEN excluded.root ELSE trusted_versions.root END,
			targets = CASE WHEN excluded.targets > trusted_versions.targets THEN excluded.targets ELSE trusted_versions.targets END`,
		max(t.Root, 0), max(t.Targets, 0)); err != nil {
		return policy.Trusted{}, s.errorf(err, "recording trusted versions root %d, policy %d", t.Root, t.Targets)
	}
	return s.TrustedVersions(ctx, q)
}
