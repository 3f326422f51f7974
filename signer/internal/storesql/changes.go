package storesql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

// ChangesSchema is the DDL of the policy change requests (BIGINT spelt by
// the caller), without the final semicolon so SQLite can append STRICT.
// A change is kept whole as its JSON (client.Change); the columns beside
// it serve the lookups and the listing order.
func ChangesSchema(bigint string) string {
	return `CREATE TABLE policy_changes (
		id         TEXT PRIMARY KEY,
		created_ns ` + bigint + ` NOT NULL,
		body       TEXT NOT NULL
	)`
}

// ChangesIndex is the DDL of the listing index of policy_changes.
const ChangesIndex = `CREATE INDEX policy_changes_created ON policy_changes (created_ns, id)`

func (s Store) encodeChange(ch *client.Change) (any, string, error) {
	if ch == nil || ch.ID == "" || ch.Created.IsZero() {
		return nil, "", fmt.Errorf("%s: a policy change needs an ID and a creation time", s.Name)
	}
	created, err := encodeTime("created", ch.Created)
	if err != nil {
		return nil, "", fmt.Errorf("%s: policy change %q: %w", s.Name, ch.ID, err)
	}
	body, err := json.Marshal(ch)
	if err != nil {
		return nil, "", fmt.Errorf("%s: policy change %q: encoding: %w", s.Name, ch.ID, err)
	}
	return created, string(body), nil
}

// CreateChange inserts a new policy change request, or fails with
// [signer.ErrExists].
func (s Store) CreateChange(ctx context.Context, q Querier, ch *client.Change) error {
	created, body, err := s.encodeChange(ch)
	if err != nil {
		return err
	}
	n, err := q.Exec(ctx, `INSERT INTO policy_changes (id, created_ns, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`, ch.ID, created, body)
	if err != nil {
		return s.errorf(err, "inserting policy change %q", ch.ID)
	}
	if n == 0 {
		return fmt.Errorf("%s: policy change %q: %w", s.Name, ch.ID, signer.ErrExists)
	}
	return nil
}

func (s Store) queryChanges(ctx context.Context, q Querier, query string, args ...any) ([]*client.Change, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, s.errorf(err, "reading policy changes")
	}
	defer rows.Close()
	out := []*client.Change{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, s.errorf(err, "reading policy changes")
		}
		ch := new(client.Change)
		if err := json.Unmarshal([]byte(body), ch); err != nil {
			return nil, fmt.Errorf("%s: a stored policy change is corrupt: %w", s.Name, err)
		}
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf(err, "reading policy changes")
	}
	return out, nil
}

// GetChange returns policy change id, or fails with [signer.ErrNotFound].
// With lock, no other transaction changes it until this one ends.
func (s Store) GetChange(ctx context.Context, q Querier, id string, lock bool) (*client.Change, error) {
	query := `SELECT body FROM policy_changes WHERE id = $1`
	if lock {
		query += s.LockRow
	}
	chs, err := s.queryChanges(ctx, q, query, id)
	if err != nil {
		return nil, err
	}
	if len(chs) == 0 {
		return nil, fmt.Errorf("%s: policy change %q: %w", s.Name, id, signer.ErrNotFound)
	}
	return chs[0], nil
}

// ListChanges lists the policy change requests, oldest first.
func (s Store) ListChanges(ctx context.Context, q Querier) ([]*client.Change, error) {
	return s.queryChanges(ctx, q, `SELECT body FROM policy_changes ORDER BY created_ns, id`)
}

// UpdateChange reads policy change id locked, lets update change it and
// stores the result together with what update asks to record (see
// [signer.ChangeUpdate]), in q's transaction: the change, then its ledger
// events and, with a supersession, the requests it supersedes and their
// events after them. An error of update stores nothing.
func (s Store) UpdateChange(ctx context.Context, q Querier, id string, update func(*client.Change) (signer.ChangeUpdate, error)) (*client.Change, error) {
	if update == nil {
		return nil, fmt.Errorf("%s: policy change %q: nil update function", s.Name, id)
	}
	ch, err := s.GetChange(ctx, q, id, true)
	if err != nil {
		return nil, err
	}
	u, err := update(ch)
	if err != nil {
		return nil, err
	}
	if ch.ID != id {
		return nil, errors.New(s.Name + ": an update may not change a policy change's ID")
	}
	_, body, err := s.encodeChange(ch)
	if err != nil {
		return nil, err
	}
	// The requests are locked before the log (as AddSignature locks its
	// request before appending), so the two never wait on each other.
	var superseded []*signer.Request
	if u.Supersede != nil {
		if superseded, err = s.pendingOf(ctx, q, u.Supersede); err != nil {
			return nil, fmt.Errorf("%s: policy change %q: %w", s.Name, id, err)
		}
	}
	if _, err := q.Exec(ctx, `UPDATE policy_changes SET body = $1 WHERE id = $2`, body, id); err != nil {
		return nil, s.errorf(err, "updating policy change %q", id)
	}
	events := slices.Clone(u.Events)
	for _, r := range superseded {
		evs, err := s.supersede(ctx, q, r, u.Supersede)
		if err != nil {
			return nil, fmt.Errorf("%s: policy change %q: %w", s.Name, id, err)
		}
		events = append(events, evs...)
	}
	if _, err := s.appendLog(ctx, q, events...); err != nil {
		return nil, err
	}
	return ch, nil
}
