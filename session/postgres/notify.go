package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// Change notification: every write other replicas must hear of sends
// pg_notify on the schema's channel in the same statement or transaction,
// so that a write that rolls back sends nothing, and one that commits is
// heard once it is visible. The payload is one letter for the kind, ':'
// and the id (at most 255 bytes: far under NOTIFY's 8000).
const (
	kindToken      = 't'
	kindUser       = 'u'
	kindUserTokens = 'r'
	kindSetting    = 's'
)

// channelFor returns the notification channel of the tables in schema.
// Channels are per database, not per schema: the name includes the
// schema, so that deployments (and tests) in other schemas of one
// database do not hear each other. A channel name is at most 63 bytes;
// a longer one is made of a hash of the schema.
func channelFor(schema string) string {
	const prefix = "gatehouse_changes."
	if len(prefix)+len(schema) <= 63 {
		return prefix + schema
	}
	h := sha256.Sum256([]byte(schema))
	return prefix + hex.EncodeToString(h[:16])
}

// payload is the notification of kind about id.
func payload(kind byte, id string) string { return string(kind) + ":" + id }

// parsePayload reads a notification's payload. One it does not know
// (a newer replica's) is ChangeAll: forgetting everything is always safe.
func parsePayload(p string) session.Change {
	if len(p) >= 2 && p[1] == ':' {
		id := p[2:]
		switch p[0] {
		case kindToken:
			return session.Change{Kind: session.ChangeToken, ID: id}
		case kindUser:
			return session.Change{Kind: session.ChangeUser, ID: id}
		case kindUserTokens:
			return session.Change{Kind: session.ChangeUserTokens, ID: id}
		case kindSetting:
			return session.Change{Kind: session.ChangeSetting, ID: id}
		}
	}
	return session.Change{Kind: session.ChangeAll}
}

// The listener's timing. A connection that fails is dialled again after
// a backoff that doubles from minBackoff to maxBackoff, with jitter, so
// that replicas that lost the server together do not come back in step.
// A connection quiet for idleCheck is pinged, so that one the network
// dropped without a word is found within idleCheck+pingTimeout, not when
// TCP gives up.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
	idleCheck   = 10 * time.Second
	pingTimeout = 5 * time.Second
)

// listenerName is the listening connection's application_name, which
// shows in pg_stat_activity.
const listenerName = "gatehouse-changes"

// WatchChanges implements session.Notifier with LISTEN on one connection
// of its own, outside the pool (it is never idle for the pool's health
// checks, and must not take a connection from requests). It reports every
// (re)connection as ChangeAll and every lost connection as ChangeLost,
// reconnects with backoff until ctx is done, and then returns.
func (s *Store) WatchChanges(ctx context.Context, fn func(session.Change)) {
	backoff := minBackoff
	listening := true // so that failing to connect at first is reported too
	for ctx.Err() == nil {
		err := s.listen(ctx, func() {
			listening, backoff = true, minBackoff
			fn(session.Change{Kind: session.ChangeAll})
		}, fn)
		if ctx.Err() != nil {
			return
		}
		if listening {
			listening = false
			fn(session.Change{Kind: session.ChangeLost, Err: err})
		}
		// Full jitter on the upper half: between backoff/2 and backoff.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, maxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen connects, listens, calls up, then hands fn every notification
// until the connection fails or ctx is done; it returns why.
func (s *Store) listen(ctx context.Context, up func(), fn func(session.Change)) error {
	cfg := s.pool.Config().ConnConfig.Copy() // its own RuntimeParams: the pool's stay as they are
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return redacted(fmt.Errorf("listen for changes: connect: %w", err), s.secrets)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen for changes: %w", err)
	}
	s.listenerPID.Store(conn.PgConn().PID())
	defer s.listenerPID.Store(0)
	up()
	for {
		wctx, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n != nil && n.Channel == s.channel {
				fn(parsePayload(n.Payload))
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("listen for changes: %w", err)
		}
		// Quiet for idleCheck: make sure the server is still there. (A
		// timed-out wait leaves the connection usable.)
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("listen for changes: ping: %w", err)
		}
	}
}

// notifySQL sends the notification $1 on the channel $2, for a batch or
// a transaction.
const notifySQL = `SELECT pg_notify($2, $1)`

var _ session.Notifier = (*Store)(nil)
