package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/internal/tokenbatch"
)

// maxTokenBatch bounds how many login tokens one transaction writes.
const maxTokenBatch = 128

// batchTimeout bounds one batch's transaction, whatever its callers'
// contexts: they share it, so none of them may cancel it for the others.
const batchTimeout = 10 * time.Second

// tokenWriter group-commits login-token inserts (see tokenbatch). Each
// caller still returns only after its batch has committed, so a token is
// durable before its cookie is sent, and each row's outcome (unknown user,
// id taken) is its own: in SQLite a failing statement is undone without
// aborting the transaction.
type tokenWriter struct {
	*tokenbatch.Writer
	db     *sql.DB
	insert *sql.Stmt // one row, ON CONFLICT DO NOTHING: each row's own outcome

	// multi holds, by row count, the prepared multi-row INSERTs; only the
	// writer goroutine uses it and args.
	multi map[int]*sql.Stmt
	args  []any
}

func newTokenWriter(db *sql.DB, insert *sql.Stmt) *tokenWriter {
	w := &tokenWriter{db: db, insert: insert, multi: map[int]*sql.Stmt{}}
	w.Writer = tokenbatch.New(maxTokenBatch, w.write)
	return w
}

// close stops accepting tokens, waits for the queued ones to be written
// and closes the statements.
func (w *tokenWriter) close() {
	w.Writer.Close()
	for _, st := range w.multi {
		_ = st.Close()
	}
}

// write stores a batch and tells each caller its outcome. The usual batch
// is written by one multi-row INSERT, its own transaction: BEGIN, COMMIT
// and a statement per row cost more than the rows themselves. When that
// statement fails (a row for an unknown or disabled user or with a taken id, and then
// SQLite has undone the whole statement), the batch is written again row
// by row in one transaction, each row with its own outcome; if that
// commit fails, every row of the batch failed.
func (w *tokenWriter) write(batch []*tokenbatch.Req) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	waited := tokenbatch.Waited(batch)
	if len(batch) == 1 && waited {
		batch[0].Done(insertToken(ctx, w.insert, batch[0].Token)) // a transaction of its own
		return
	}
	if waited && w.insertAll(ctx, batch) == nil {
		for _, req := range batch {
			req.Done(nil)
		}
		return
	}
	w.writeRows(ctx, batch)
}

// insertAll writes every token of batch with one statement, or none.
func (w *tokenWriter) insertAll(ctx context.Context, batch []*tokenbatch.Req) error {
	st := w.multi[len(batch)]
	if st == nil {
		var q strings.Builder
		q.WriteString(sqlCreateTokens)
		for i := range batch {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?, ?)")
		}
		var err error
		if st, err = w.db.PrepareContext(ctx, q.String()); err != nil {
			return err
		}
		w.multi[len(batch)] = st
	}
	w.args = w.args[:0]
	for _, req := range batch {
		t := req.Token
		w.args = append(w.args, t.ID, t.UserID, t.SecretHash, millis(t.CreatedAt), millis(t.ExpiresAt))
	}
	_, err := st.ExecContext(ctx, w.args...)
	clear(w.args) // drop the references to the tokens
	return err
}

// writeRows inserts a batch row by row in one transaction.
func (w *tokenWriter) writeRows(ctx context.Context, batch []*tokenbatch.Req) {
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := w.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt := tx.StmtContext(ctx, w.insert)
		for i, req := range batch {
			if err := req.Ctx.Err(); err != nil {
				errs[i] = fmt.Errorf("create login token %s: %w", req.Token.ID, err) // nobody waits: do not write it
				continue
			}
			errs[i] = insertToken(ctx, stmt, req.Token)
		}
		return tx.Commit()
	}()
	for i, req := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("create login token %s: %w", req.Token.ID, err)
		}
		req.Done(errs[i])
	}
}

func insertToken(ctx context.Context, stmt *sql.Stmt, t *session.LoginToken) error {
	r, err := stmt.ExecContext(ctx, t.ID, t.UserID, t.SecretHash, millis(t.CreatedAt), millis(t.ExpiresAt))
	if err != nil { // first: errors.As in the checks allocates even for a nil error
		switch {
		case isForeignKey(err):
			return fmt.Errorf("create login token %s: user %s: %w", t.ID, t.UserID, session.ErrNotFound)
		case isUserDisabled(err):
			return fmt.Errorf("create login token %s: user %s: %w", t.ID, t.UserID, session.ErrUserDisabled)
		}
		return fmt.Errorf("create login token %s: %w", t.ID, err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("create login token %s: %w", t.ID, err)
	} else if n == 0 {
		return fmt.Errorf("create login token %s: a token with this id exists", t.ID)
	}
	return nil
}
