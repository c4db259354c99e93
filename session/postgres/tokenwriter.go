package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/tokenbatch"
)

// maxTokenBatch bounds how many login tokens one statement writes.
const maxTokenBatch = 128

// sqlCreateTokens is sqlCreateToken for many rows, $1…$5 arrays of the
// columns: one statement and one commit for a batch, and each row's
// outcome in the result (n is the row's place in the arrays, from 1). The
// users' rows are locked FOR SHARE as the single insert does, in id order
// so that two batches cannot deadlock on each other's locks' order.
// Duplicate ids within one batch are kept out of it by write: which of
// them was inserted would not show in the result.
const sqlCreateTokens = `
WITH r AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[], $5::timestamptz[])
		WITH ORDINALITY AS r (id, user_id, secret_hash, created_at, expires_at, n)
),
u AS (SELECT id, disabled FROM users WHERE id = ANY($2::text[]) ORDER BY id FOR SHARE),
ins AS (
	INSERT INTO login_tokens (id, user_id, secret_hash, created_at, expires_at)
	SELECT r.id, r.user_id, r.secret_hash, r.created_at, r.expires_at
	FROM r JOIN u ON u.id = r.user_id WHERE NOT u.disabled
	ON CONFLICT (id) DO NOTHING RETURNING id
)
SELECT r.n, u.disabled, ins.id IS NOT NULL
FROM r LEFT JOIN u ON u.id = r.user_id LEFT JOIN ins ON ins.id = r.id`

// tokenWriter group-commits CreateLoginToken (see tokenbatch): with a
// commit per token, first-seen bearers on PostgreSQL waited on the WAL
// flush of each other's commits. A caller returns only after its batch has
// committed, so a token is durable before its cookie is sent.
type tokenWriter struct {
	*tokenbatch.Writer
	pool *pgxpool.Pool

	// For tests: onBatch, when set, is called with each batch's size
	// before it is written, and onStatement with the rows and the error of
	// each multi-row statement.
	onBatch     func(n int)
	onStatement func(rows int, err error)
}

func newTokenWriter(pool *pgxpool.Pool) *tokenWriter {
	w := &tokenWriter{pool: pool}
	w.Writer = tokenbatch.New(maxTokenBatch, w.write)
	return w
}

// write stores a batch and tells each caller its outcome. A caller that
// no longer waits has its token skipped. The batch's rows go in one
// statement, bounded by opTimeout whatever the callers' contexts (they
// share it, so none may cancel it for the others); if that statement
// fails, each row is written again on its own, for its own outcome.
func (w *tokenWriter) write(batch []*tokenbatch.Req) {
	if w.onBatch != nil {
		w.onBatch(len(batch))
	}
	var rows, later []*tokenbatch.Req
	seen := make(map[string]bool, len(batch))
	for _, req := range batch {
		switch {
		case req.Ctx.Err() != nil:
			req.Done(fmt.Errorf("create login token %s: %w", req.Token.ID, req.Ctx.Err())) // nobody waits: do not write it
		case seen[req.Token.ID]:
			later = append(later, req) // after the first of its id, as if it had come in the next batch
		default:
			seen[req.Token.ID] = true
			rows = append(rows, req)
		}
	}
	ctx, cancel := bound(context.Background())
	defer cancel()
	if len(rows) > 1 {
		errs, err := w.insertAll(ctx, rows)
		if w.onStatement != nil {
			w.onStatement(len(rows), err)
		}
		if err == nil {
			for i, req := range rows {
				req.Done(errs[i])
			}
			rows = nil
		}
	}
	for _, req := range append(rows, later...) {
		req.Done(insertToken(ctx, w.pool, req.Token))
	}
}

// insertAll writes rows by one statement and returns each row's outcome,
// or the statement's error, and then nothing was written.
func (w *tokenWriter) insertAll(ctx context.Context, rows []*tokenbatch.Req) ([]error, error) {
	var (
		ids, users       = make([]string, len(rows)), make([]string, len(rows))
		hashes           = make([][]byte, len(rows))
		created, expires = make([]time.Time, len(rows)), make([]time.Time, len(rows))
	)
	for i, req := range rows {
		t := req.Token
		ids[i], users[i], hashes[i] = t.ID, t.UserID, t.SecretHash
		created[i], expires[i] = ms(t.CreatedAt), ms(t.ExpiresAt)
	}
	res, err := w.pool.Query(ctx, sqlCreateTokens, ids, users, hashes, created, expires)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	errs := make([]error, len(rows))
	got := 0
	for res.Next() {
		var (
			n        int
			disabled *bool // nil: no such user
			inserted bool
		)
		if err := res.Scan(&n, &disabled, &inserted); err != nil {
			return nil, err
		}
		if n < 1 || n > len(rows) {
			return nil, fmt.Errorf("row %d of a batch of %d", n, len(rows))
		}
		errs[n-1] = tokenOutcome(rows[n-1].Token, disabled, inserted)
		got++
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	if got != len(rows) {
		return nil, fmt.Errorf("%d outcomes for a batch of %d", got, len(rows))
	}
	return errs, nil
}

// tokenOutcome is what CreateLoginToken returns for t, given what the
// statement found: its user's disabled flag (nil: no such user) and
// whether the row was inserted.
func tokenOutcome(t *session.LoginToken, disabled *bool, inserted bool) error {
	switch {
	case disabled == nil:
		return fmt.Errorf("create login token %s: user %s: %w", t.ID, t.UserID, session.ErrNotFound)
	case *disabled:
		return fmt.Errorf("create login token %s: user %s: %w", t.ID, t.UserID, session.ErrUserDisabled)
	case !inserted:
		return fmt.Errorf("create login token %s: a token with this id exists", t.ID)
	}
	return nil
}
