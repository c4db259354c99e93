package test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a PostgreSQL server of one test's own, in a temporary data
// directory, that the test may stop and start again on the same port; the
// machine's shared server must never be stopped, as other tests use it.
type pgServer struct {
	bin  string // the directory of initdb and postgres
	dir  string // holds data/ and the Unix socket
	port int
	cred *syscall.Credential // whom the server runs as; nil: the test's user
	URL  string              // trust authentication, database postgres

	cmd  *exec.Cmd
	done chan struct{}
	out  *logSink
}

// newPGServer initialises a data directory and starts a server on a free
// loopback port. Without PostgreSQL's programs the test is skipped with a
// message saying what to install, except under CI=true, where it fails.
func newPGServer(t *testing.T) *pgServer {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		msg := "a private PostgreSQL server is needed (" + err.Error() + "): install PostgreSQL's server programs (initdb, postgres; Debian: postgresql)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "gatehouse-pg-") // not t.TempDir: its parents are closed to other users
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &pgServer{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, a private PostgreSQL server needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", s.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	s.setCred(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	t.Cleanup(func() {
		if s.cmd != nil {
			s.stop(t)
		}
	})
	s.start(t)
	return s
}

// postgresBin finds the directory of the server programs: the newest
// /usr/lib/postgresql/*/bin, else initdb's directory on the PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/postgres, and %w", err)
	}
	return filepath.Dir(p), nil
}

// versionOf is the major version in /usr/lib/postgresql/<version>/bin.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func (s *pgServer) data() string { return filepath.Join(s.dir, "data") }

func (s *pgServer) setCred(cmd *exec.Cmd) {
	setDeathSignal(cmd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = s.cred
}

// start runs the server on its data directory and port, and waits until
// it accepts connections.
func (s *pgServer) start(t *testing.T) {
	t.Helper()
	s.out, s.done = newLogSink(), make(chan struct{})
	s.cmd = exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data(), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.setCred(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	done := s.done
	go func() { _ = s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, s.URL)
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return
		}
		select {
		case <-done:
			t.Fatalf("postgres exited at start-up; its output:\n%s", s.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not accepting connections within 30s (%v); its output:\n%s", err, s.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down as `pg_ctl stop -m fast` does (SIGINT:
// clients are disconnected, the data is checkpointed) and waits for it.
func (s *pgServer) stop(t *testing.T) {
	t.Helper()
	s.signalAll(syscall.SIGCONT) // in case it is frozen
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("postgres did not stop within 30s of SIGINT; its output:\n%s", s.out)
	}
	s.cmd = nil
}

// freeze stops (SIGSTOP) the server and its backends, as a host that
// hangs or a network that drops packets would look to its clients:
// connections are accepted by the kernel, and nothing answers. thaw
// undoes it.
func (s *pgServer) freeze(t *testing.T) { s.signalGroup(t, syscall.SIGSTOP) }

func (s *pgServer) thaw(t *testing.T) { s.signalGroup(t, syscall.SIGCONT) }

func (s *pgServer) signalGroup(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.signalAll(sig); err != nil {
		t.Fatalf("signal %v to postgres: %v", sig, err)
	}
}

// signalAll sends sig to the postmaster and its children, which it finds
// in /proc (each runs in a process group of its own).
func (s *pgServer) signalAll(sig syscall.Signal) error {
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil {
		return err
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == pid {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			_ = syscall.Kill(child, sig)
		}
	}
	return nil
}
