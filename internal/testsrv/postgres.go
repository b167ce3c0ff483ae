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
	p.run(t, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start",
		"-o", fmt.Sprintf("-c listen_addresses='' -k %s -c max_connections=50", dir))
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
