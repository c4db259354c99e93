package test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// kill ends p with SIGKILL, as an OOM killer or a node failure would.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.stopped = true
	p.client.CloseIdleConnections()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("gatehouse still running 15s after SIGKILL")
	}
}

// TestKillMidBurst: Gatehouse killed with SIGKILL while many users sign in
// for the first time restarts on the same store, which is intact and holds
// no half-made user: every user in it has the e-mail, sync time, groups and
// organizations IMS gave, and every login token belongs to a user. Then
// every user of the burst signs in.
func TestKillMidBurst(t *testing.T) {
	t.Parallel()
	const (
		users   = 200
		workers = 32
		killAt  = 40 // answers received before the kill
	)
	w := newWorld(t)
	burst := make([]imsUser, users)
	for i := range burst {
		burst[i] = newBurstUser(w.ims.Emulator, i)
	}
	tokens := make([]string, users)
	for i, u := range burst {
		tokens[i] = w.mint(t, u, clientID)
	}

	p := w.start(t, nil)
	var (
		answered atomic.Int64
		killOnce sync.Once
		wg       sync.WaitGroup
		next     atomic.Int64
	)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= users {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, p.url+whoami, nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				resp, err := client.Do(req)
				if err != nil {
					continue // the process is gone: the rest of the burst fails alike
				}
				resp.Body.Close()
				if answered.Add(1) == killAt {
					killOnce.Do(func() { _ = p.cmd.Process.Kill() })
				}
			}
		}()
	}
	wg.Wait()
	p.kill(t)
	if n := answered.Load(); n >= users {
		t.Fatalf("all %d sign-ins were answered before the kill: it did not come mid-burst", n)
	}

	// The same store, a new process: it must start, and its store must be
	// whole.
	p = w.start(t, nil)
	made := checkStore(t, w.db, burst)
	t.Logf("%d answers before the kill; %d of %d users in the store after it", answered.Load(), made, users)

	for i, u := range burst {
		wantUser(t, p.do(t, request{path: whoami, bearer: tokens[i]}), u)
		if t.Failed() {
			t.FailNow()
		}
	}
	checkStore(t, w.db, burst)
	wantCleanLogs(t, p)
}

// newBurstUser adds the i-th user of a burst to the emulator: every third
// one also an administrator, so that users differ in their groups.
func newBurstUser(e *imstest.Emulator, i int) imsUser {
	u := imsUser{fmt.Sprintf("B%023d@AdobeID", i), fmt.Sprintf("burst%d@example.com", i), []string{"dam-users"}}
	groups := []ims.Group{{GroupName: "AEM-Authors", Ident: "4711", Role: "TEAM_MEMBER"}}
	if i%3 == 0 {
		groups = append(groups, ims.Group{GroupName: "AEM-Admins", Ident: "4712", Role: "GRP_ADMIN"})
		u.groups = []string{"administrators", "dam-users"}
	}
	e.AddUser(imstest.User{ID: u.id, Email: u.email, FirstName: "Burst", LastName: fmt.Sprint(i),
		Orgs: []imstest.Org{{ID: orgID, Name: "Example Brand", Groups: groups}}})
	return u
}

// checkStore opens the store file read-only beside the running Gatehouse
// and checks that SQLite finds it intact and that each user of burst is
// either absent or whole. It returns how many are present.
func checkStore(t *testing.T, path string, burst []imsUser) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	var integrity string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q, %v", integrity, err)
	}
	rows, err := db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("foreign_key_check: a row refers to a missing parent")
	}
	rows.Close()
	var orphans int
	if err := db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM login_tokens WHERE user_id NOT IN (SELECT id FROM users)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("%d login tokens of no user (%v)", orphans, err)
	}

	made := 0
	for _, u := range burst {
		var email string
		var synced int64
		err := db.QueryRowContext(ctx, `SELECT email, synced_at FROM users WHERE id = ?`, u.id).Scan(&email, &synced)
		if err == sql.ErrNoRows {
			if n := count(t, ctx, db, `SELECT COUNT(*) FROM memberships WHERE user_id = ?`, u.id) +
				count(t, ctx, db, `SELECT COUNT(*) FROM user_orgs WHERE user_id = ?`, u.id) +
				count(t, ctx, db, `SELECT COUNT(*) FROM login_tokens WHERE user_id = ?`, u.id); n != 0 {
				t.Errorf("user %s is absent but %d rows refer to it", u.id, n)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		made++
		if email != u.email || synced <= 0 {
			t.Errorf("user %s: email %q synced_at %d, want %q and a sync time", u.id, email, synced, u.email)
		}
		groups := column(t, ctx, db, `SELECT group_name FROM memberships WHERE user_id = ? AND source = ? ORDER BY group_name`, u.id, session.SourceIMS)
		if !slices.Equal(groups, u.groups) {
			t.Errorf("user %s: groups %q, want %q (a half-made user)", u.id, groups, u.groups)
		}
		if orgs := column(t, ctx, db, `SELECT org_id FROM user_orgs WHERE user_id = ?`, u.id); !slices.Equal(orgs, []string{orgID}) {
			t.Errorf("user %s: organizations %q, want [%s] (a half-made user)", u.id, orgs, orgID)
		}
	}
	return made
}

func count(t *testing.T, ctx context.Context, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func column(t *testing.T, ctx context.Context, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
