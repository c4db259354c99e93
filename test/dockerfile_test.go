package test

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	op, args string
}

// dockerfileStages reads the Dockerfile into its stages' instructions.
func dockerfileStages(t *testing.T, path string) [][]instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		op, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(op), strings.TrimSpace(args)}
		if in.op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before FROM", in.op)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if l, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

func find(stage []instruction, op string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.op == op {
			out = append(out, in)
		}
	}
	return out
}

// TestDockerfile checks every step of the image that can be checked without
// a container runtime: the build command, run as written, gives a static
// binary; the image runs it as a non-root user on a static base; and the
// HEALTHCHECK's command, run against that binary serving as that user with
// the image's settings, says healthy, then unhealthy once it stopped.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerfileStages(t, filepath.Join(root, "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(stages))
	}
	build, image := stages[0], stages[1]

	// The build command, as written, with the output moved here.
	var goBuild string
	for _, in := range find(build, "RUN") {
		for cmd := range strings.SplitSeq(in.args, "&&") {
			if strings.Contains(cmd, "go build") {
				goBuild = strings.TrimSpace(cmd)
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0 go build", "-trimpath", "-o /out/gatehouse", "./cmd/gatehouse", "main.version=${VERSION}"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("the build command %q lacks %q", goBuild, want)
		}
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	script := strings.NewReplacer("/out/gatehouse", bin, "${VERSION}", "dockerfile-test").Replace(goBuild)
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1") // the command's own CGO_ENABLED=0 must win
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary asks for a dynamic loader: not static")
		}
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v: not static", libs)
	}
	f.Close()
	if code, stdout, _ := runBinaryOf(t, bin, 30*time.Second, nil, "version"); code != 0 || !strings.Contains(stdout, "dockerfile-test") {
		t.Errorf("version: exit %d, %q; want the VERSION build argument", code, stdout)
	}

	// The image: a static base, a non-root user, the binary and its store.
	from := find(image, "FROM")[0].args
	if !strings.Contains(from, "static") || !strings.HasSuffix(from, ":nonroot") {
		t.Errorf("image base %q: want a static distroless base, nonroot", from)
	}
	users := find(image, "USER")
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1].args, "root") || strings.HasPrefix(users[len(users)-1].args, "0") {
		t.Errorf("USER %v: want a non-root user", users)
	}
	var copied bool
	for _, in := range find(image, "COPY") {
		copied = copied || strings.HasSuffix(in.args, "/out/gatehouse /gatehouse")
	}
	if !copied {
		t.Error("the image does not copy /out/gatehouse to /gatehouse")
	}
	env := map[string]string{}
	for _, in := range find(image, "ENV") {
		for kv := range strings.FieldsSeq(in.args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	if env["GATEHOUSE_LISTEN"] != ":8080" || env["GATEHOUSE_STORE"] != "sqlite:/data/gatehouse.db" {
		t.Errorf("image settings %v", env)
	}
	var entry, health []string
	if e := find(image, "ENTRYPOINT"); len(e) == 1 {
		_ = json.Unmarshal([]byte(e[0].args), &entry)
	}
	if len(entry) != 1 || entry[0] != "/gatehouse" {
		t.Errorf("ENTRYPOINT %q: want [\"/gatehouse\"]", entry)
	}
	if h := find(image, "HEALTHCHECK"); len(h) == 1 {
		_, exec, _ := strings.Cut(h[0].args, "CMD ")
		_ = json.Unmarshal([]byte(exec), &health)
	}
	if len(health) < 2 || health[0] != "/gatehouse" || health[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK %q: want the exec form of /gatehouse healthcheck", health)
	}

	// The binary serving as the image's user (65532, distroless's nonroot),
	// its store in a directory that user owns, as the /data volume is.
	w := newWorld(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := data; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755) // t.TempDir's directories are 0700
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := w.baseEnv()
	vars["LISTEN"], vars["STORE"] = addr, "sqlite:"+filepath.Join(data, "gatehouse.db")
	serveEnv := envOf(vars)
	asNonroot := func(c *exec.Cmd) {
		if runAs(c, 65532, 65532) {
			if err := os.Chown(data, 65532, 65532); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := startServeBinary(t, bin, serveEnv, asNonroot)
	p.waitReady(t)
	if _, err := os.Stat(filepath.Join(data, "gatehouse.db")); err != nil {
		t.Errorf("the store was not made in the data directory: %v", err)
	}
	probe := envOf(map[string]string{"LISTEN": addr})
	if code, stdout, stderr := runBinaryOf(t, bin, 30*time.Second, probe, health[1:]...); code != 0 || !strings.Contains(stdout, "ok") {
		t.Errorf("the HEALTHCHECK command against the running binary: exit %d, %q %q", code, stdout, stderr)
	}
	if code, _, stderr := runBinaryOf(t, bin, 30*time.Second, probe, "healthcheck", "-ready"); code != 0 {
		t.Errorf("healthcheck -ready: exit %d, %q", code, stderr)
	}
	p.stop(t)
	if code, _, _ := runBinaryOf(t, bin, 30*time.Second, probe, health[1:]...); code == 0 {
		t.Error("the HEALTHCHECK command says healthy with nothing listening")
	}
}
