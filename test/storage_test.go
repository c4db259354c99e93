package test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireRoot fails the test unless it runs as root: the storage faults
// need mounts and loop devices. They are never skipped, so that CI (which
// runs the suite as root) cannot lose them silently.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts file systems to break the store and must run as root (uid %d); CI runs the suite as root", os.Geteuid())
	}
}

// mountTmpfs mounts a tmpfs of the given size on a new directory, unmounted
// when the test ends (after the processes that use it have stopped).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// mountExt4 mounts a small ext4 image on a new directory through a loop
// device, with errors=remount-ro, and returns the directory and the
// device's name (loopN).
func mountExt4(t *testing.T) (dir, dev string) {
	t.Helper()
	requireRoot(t)
	img := filepath.Join(t.TempDir(), "store.img")
	dir = t.TempDir()
	run(t, "truncate", "-s", "16M", img)
	run(t, "mkfs.ext4", "-q", "-F", img)
	run(t, "mount", "-o", "loop,errors=remount-ro", img, dir)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", "-d", dir).Run() })
	src := strings.TrimSpace(run(t, "findmnt", "-n", "-o", "SOURCE", "--target", dir))
	if !strings.HasPrefix(src, "/dev/loop") {
		t.Fatalf("%s is mounted from %q, want a loop device", dir, src)
	}
	return dir, filepath.Base(src)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// fillDisk writes a ballast file in dir until the file system is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestStorageFaults: when the store cannot be written (its file system
// gone read-only or full, or its file locked by another process), a new
// sign-in is refused with a clear 503 that says the store is at fault and
// when to retry, never a 500; users who hold a login token keep being
// served, read from the store; and once the fault clears, sign-in works
// without a restart.
func TestStorageFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// setup returns the store's directory and functions that break and
		// repair it (repair nil: this fault cannot be undone while mounted).
		setup func(t *testing.T) (dir string, breakIt, repair func())
		// slow: each write waits out the store's busy timeout before it
		// fails, so a burst would test patience rather than the store.
		slow bool
	}{
		{"read-only file system", func(t *testing.T) (string, func(), func()) {
			dir, dev := mountExt4(t)
			// What the kernel does to a file system that reports errors:
			// remount it read-only under the process that has it open.
			return dir, func() {
				err := os.WriteFile("/sys/fs/ext4/"+dev+"/trigger_fs_error", []byte("gatehouse storage fault test\n"), 0)
				if err != nil {
					t.Fatalf("make %s read-only: %v", dir, err)
				}
				if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
					t.Fatalf("the file system is still writable after the error (%v)", err)
				}
			}, nil
		}, false},
		{"locked by another process", func(t *testing.T) (string, func(), func()) {
			dir := t.TempDir()
			var unlock func()
			return dir, func() { unlock = lockStore(t, filepath.Join(dir, "g.db")) }, func() { unlock() }
		}, true},
		{"disk full", func(t *testing.T) (string, func(), func()) {
			dir := mountTmpfs(t, "4m")
			var ballast string
			return dir, func() { ballast = fillDisk(t, dir) }, func() {
				if err := os.Remove(ballast); err != nil {
					t.Fatal(err)
				}
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			dir, breakIt, repair := tc.setup(t)
			// No session cache: every cookie is read from the store, the
			// hardest case for "warm cookies are still served".
			p := w.start(t, map[string]string{"STORE": "sqlite:" + filepath.Join(dir, "g.db"), "SESSION_CACHE_TTL": "0s"})

			r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
			wantUser(t, r, alice)
			warm := r.newCookie(t).value

			breakIt()
			tokB := w.mint(t, bob, clientID)
			for i := range 2 { // the second time the user's IMS data is cached or stale: still 503
				r = p.do(t, request{path: whoami, bearer: tokB})
				wantStoreUnavailable(t, r, fmt.Sprintf("sign-in %d", i+1))
			}
			for range 3 {
				wantUser(t, p.do(t, request{path: whoami, cookie: warm}), alice)
			}
			// Alice's bearer again: she gets her login token back, or a 503,
			// never a 500.
			r = p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
			if r.status != http.StatusOK {
				wantStoreUnavailable(t, r, "a known user's sign-in")
			}

			// Many at once: the login tokens are written in one batch, whose
			// failure must reach every caller, without a hang.
			if !tc.slow {
				for i, r := range signInBurst(t, p, w, 16) {
					if r.status != http.StatusOK {
						wantStoreUnavailable(t, r, fmt.Sprintf("concurrent sign-in %d", i))
					}
				}
			}

			// Signing out cannot revoke the login token: say so, so that the
			// user does not believe it is gone.
			logout := request{method: http.MethodPost, path: "/gatehouse/logout", cookie: warm}
			r = p.do(t, logout)
			if r.status != http.StatusServiceUnavailable || r.header.Get("X-Reason") != "STORE_UNAVAILABLE" {
				t.Errorf("logout: %d X-Reason %q, want 503 STORE_UNAVAILABLE; body %s", r.status, r.header.Get("X-Reason"), bytes.TrimSpace(r.body))
			}
			wantUser(t, p.do(t, request{path: whoami, cookie: warm}), alice)

			if repair != nil {
				repair()
				r = p.do(t, request{path: whoami, bearer: tokB})
				wantUser(t, r, bob)
				wantUser(t, p.do(t, request{path: whoami, cookie: r.newCookie(t).value}), bob)
				wantStatus(t, p.do(t, logout), http.StatusOK)
				r = p.do(t, request{path: whoami, cookie: warm})
				wantAuthError(t, r, http.StatusUnauthorized, "invalid_token", "INVALID_TOKEN")
			}
			wantCleanLogs(t, p, warm)
		})
	}
}

// wantStoreUnavailable checks a sign-in refused because the store cannot
// be written.
func wantStoreUnavailable(t *testing.T, r *response, what string) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable || r.header.Get("X-Reason") != "STORE_UNAVAILABLE" {
		t.Errorf("%s: %d X-Reason %q, want 503 STORE_UNAVAILABLE; body %s", what, r.status, r.header.Get("X-Reason"), bytes.TrimSpace(r.body))
		return
	}
	wantAuthError(t, r, http.StatusServiceUnavailable, "", "STORE_UNAVAILABLE")
	wantRetryAfter(t, r)
	r.wantNoNewCookie(t)
	if !strings.Contains(string(r.body), "temporarily unavailable") {
		t.Errorf("%s: body %s, want it to say sign-in is temporarily unavailable", what, bytes.TrimSpace(r.body))
	}
	if r.took > 20*time.Second {
		t.Errorf("%s: took %s", what, r.took)
	}
}

// signInBurst signs alice in n times at once, each with a new bearer
// token, and returns the answers.
func signInBurst(t *testing.T, p *proc, w *world, n int) []*response {
	t.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = w.mint(t, alice, clientID)
	}
	out := make([]*response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodGet, p.url+whoami, nil)
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			start := time.Now()
			resp, err := p.client.Do(req) // its timeout bounds a hang
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			out[i], errs[i] = &response{status: resp.StatusCode, header: resp.Header, body: body, took: time.Since(start)}, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent sign-ins: %v", err)
	}
	return out
}

// lockStore holds the write lock of the SQLite database at path from
// another connection, as a stuck maintenance job would, until the returned
// function is called.
func lockStore(t *testing.T, path string) (unlock func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("lock the store: %v", err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			_ = conn.Close()
			_ = db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}
