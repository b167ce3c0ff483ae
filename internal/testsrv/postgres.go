package testsrv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresUser is the unprivileged system user the cluster runs as when
// the tests run as root (.ci/run creates it).
const PostgresUser = "runnel-pg"

// Postgres is a throwaway PostgreSQL cluster listening only on a unix
// socket in a temporary directory.
type Postgres struct {
	// DSN connects as the cluster's superuser to database postgres.
	DSN  string
	bin  string
	dir  string
	cred *credential // the user the cluster runs as; nil: this process's
}

// StartPostgres initialises and starts a cluster, stopped and removed when
// the test ends. It fails the test when Debian's postgresql is missing.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is not installed: apt-get install postgresql (see .ci/run)")
	}
	sort.Strings(bins)
	p := &Postgres{bin: filepath.Dir(bins[len(bins)-1])}
	// Not t.TempDir: its parent is private to root, and the server runs
	// as another user.
	dir, err := os.MkdirTemp("", "runnel-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup(PostgresUser)
		if err != nil {
			t.Fatalf("tests run as root need the system user %s for PostgreSQL (useradd --system %s, see .ci/run): %v", PostgresUser, PostgresUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &credential{uid: uint32(uid), gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	p.run(t, "initdb", "-D", data, "-U", "runnel", "--auth=trust", "-E", "UTF8", "--no-locale")
	p.Start(t)
	t.Cleanup(func() { p.Stop(t) })
	p.DSN = fmt.Sprintf("host=%s user=runnel dbname=postgres sslmode=disable", dir)
	return p
}

// Connect opens a connection to the cluster as its superuser (DSN). The
// caller closes it.
func (p *Postgres) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// Pool opens a connection pool to the cluster as its superuser (DSN). The
// caller closes it.
func (p *Postgres) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// Start starts the cluster (again, after Stop: it recovers as after a
// crash) and waits until it accepts connections.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	p.run(t, "pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "start",
		"-o", fmt.Sprintf("-c listen_addresses='' -k %s -c max_connections=50", p.dir))
}

// Processes returns the process ids of the running cluster: the
// postmaster first, then its children (backends and background workers),
// as /proc shows them; none when the cluster is stopped or /proc is
// missing.
func (p *Postgres) Processes() []int {
	b, err := os.ReadFile(filepath.Join(p.dir, "data", "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil
	}
	pids := []int{pm}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after
		// its closing parenthesis.
		i := strings.LastIndexByte(string(stat), ')')
		if f := strings.Fields(string(stat[i+1:])); i > 0 && len(f) > 1 && f[1] == strconv.Itoa(pm) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Stop stops the cluster at once (immediate mode: no checkpoint, as a
// crash would leave it).
func (p *Postgres) Stop(t testing.TB) {
	cmd := exec.Command(filepath.Join(p.bin, "pg_ctl"), "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "stop")
	runAs(cmd, p.cred)
	cmd.Run()
}

func (p *Postgres) run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	runAs(cmd, p.cred)
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		t.Fatalf("%s: %v\n%s\n%s", name, err, out, log)
	}
}
