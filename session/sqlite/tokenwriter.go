package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// maxTokenBatch bounds how many login tokens one transaction writes.
const maxTokenBatch = 128

// batchTimeout bounds one batch's transaction, whatever its callers'
// contexts: they share it, so none of them may cancel it for the others.
const batchTimeout = 10 * time.Second

var errClosed = errors.New("session store is closed")

// tokenWriter group-commits login-token inserts. Every bearer sign-in
// writes a token, and a commit costs more than the INSERT itself; under
// concurrent sign-ins the tokens queued while one batch commits are
// written together in the next transaction. Each caller still returns only
// after its batch has committed, so a token is durable before its cookie
// is sent, and each row's outcome (unknown user, id taken) is its own: in
// SQLite a failing statement is undone without aborting the transaction.
type tokenWriter struct {
	db     *sql.DB
	insert *sql.Stmt // one row, ON CONFLICT DO NOTHING: each row's own outcome

	// multi holds, by row count, the prepared multi-row INSERTs; only the
	// writer goroutine uses it and args.
	multi map[int]*sql.Stmt
	args  []any

	mu     sync.RWMutex // held for reading while enqueuing, for writing by close
	closed bool
	queue  chan *tokenReq
	done   chan struct{} // closed when the writer goroutine has returned
}

type tokenReq struct {
	ctx    context.Context
	t      *session.LoginToken
	result chan error // buffered: the writer never blocks on a caller that left
}

func newTokenWriter(db *sql.DB, insert *sql.Stmt) *tokenWriter {
	w := &tokenWriter{db: db, insert: insert, multi: map[int]*sql.Stmt{},
		queue: make(chan *tokenReq, maxTokenBatch), done: make(chan struct{})}
	go w.run()
	return w
}

// create queues t and waits until its batch has committed or ctx is done.
// A caller that stops waiting may still find its token written; an unused
// token expires like any other.
func (w *tokenWriter) create(ctx context.Context, t *session.LoginToken) error {
	req := &tokenReq{ctx: ctx, t: t, result: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return fmt.Errorf("create login token %s: %w", t.ID, errClosed)
	}
	select {
	case w.queue <- req:
	case <-ctx.Done():
		w.mu.RUnlock()
		return fmt.Errorf("create login token %s: %w", t.ID, ctx.Err())
	}
	w.mu.RUnlock()
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("create login token %s: %w", t.ID, ctx.Err())
	}
}

// close stops accepting tokens and waits for the queued ones to be written.
func (w *tokenWriter) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *tokenWriter) run() {
	defer close(w.done)
	batch := make([]*tokenReq, 0, maxTokenBatch)
	for req := range w.queue {
		batch = append(batch[:0], req)
		// Let the goroutines that are about to queue a token run first:
		// on few cores, the next sign-ins are still being verified when the
		// first one is queued. A yield costs nanoseconds; a timer would
		// cost a lone sign-in a millisecond on this kind of machine.
		runtime.Gosched()
	fill:
		for len(batch) < maxTokenBatch {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.write(batch)
	}
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
func (w *tokenWriter) write(batch []*tokenReq) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	waited := true // every caller still waits: none of the tokens is to be skipped
	for _, req := range batch {
		if req.ctx.Err() != nil {
			waited = false
			break
		}
	}
	if len(batch) == 1 && waited {
		batch[0].result <- insertToken(ctx, w.insert, batch[0].t) // a transaction of its own
		return
	}
	if waited && w.insertAll(ctx, batch) == nil {
		for _, req := range batch {
			req.result <- nil
		}
		return
	}
	w.writeRows(ctx, batch)
}

// insertAll writes every token of batch with one statement, or none.
func (w *tokenWriter) insertAll(ctx context.Context, batch []*tokenReq) error {
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
		t := req.t
		w.args = append(w.args, t.ID, t.UserID, t.SecretHash, millis(t.CreatedAt), millis(t.ExpiresAt))
	}
	_, err := st.ExecContext(ctx, w.args...)
	clear(w.args) // drop the references to the tokens
	return err
}

// writeRows inserts a batch row by row in one transaction.
func (w *tokenWriter) writeRows(ctx context.Context, batch []*tokenReq) {
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := w.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt := tx.StmtContext(ctx, w.insert)
		for i, req := range batch {
			if err := req.ctx.Err(); err != nil {
				errs[i] = fmt.Errorf("create login token %s: %w", req.t.ID, err) // nobody waits: do not write it
				continue
			}
			errs[i] = insertToken(ctx, stmt, req.t)
		}
		return tx.Commit()
	}()
	for i, req := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("create login token %s: %w", req.t.ID, err)
		}
		req.result <- errs[i]
	}
}

func insertToken(ctx context.Context, stmt *sql.Stmt, t *session.LoginToken) error {
	r, err := stmt.ExecContext(ctx, t.ID, t.UserID, t.SecretHash, millis(t.CreatedAt), millis(t.ExpiresAt))
	if isForeignKey(err) {
		return fmt.Errorf("create login token %s: user %s: %w", t.ID, t.UserID, session.ErrNotFound)
	}
	if isUserDisabled(err) {
		return fmt.Errorf("create login token %s: user %s: %w", t.ID, t.UserID, session.ErrUserDisabled)
	}
	if err != nil {
		return fmt.Errorf("create login token %s: %w", t.ID, err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("create login token %s: %w", t.ID, err)
	} else if n == 0 {
		return fmt.Errorf("create login token %s: a token with this id exists", t.ID)
	}
	return nil
}
