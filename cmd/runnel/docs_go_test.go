package main

import (
	"encoding/json"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The Go code blocks of README.md and docs/*.md are compiled against the
// repository's current code, so an example cannot drift from the API it
// shows.
//
// A ```go block is a whole Go file, as a reader would paste it:
//
//   - `package main`: the block is main.go of a program in a scratch module
//     that requires github.com/runnel-dev/runnel, replaced by this
//     repository, with the repository's go.sum; the programs are built and
//     vetted offline (GOPROXY=off, GOFLAGS=-mod=mod), from the module cache,
//     and must be gofmt'd.
//   - `package X`, another name: the block is an extra file of the
//     repository's package X (the one directory whose non-test files are
//     package X), added with `go build -overlay`; such a block may use the
//     package's unexported names, as a new file in that package does. It is
//     built, not vetted: vet would add the package's tests, and a test file
//     may hold the same code (docs/architecture.md's example is
//     jobs/architecture_example_test.go).
//   - no package clause: a fragment, which fails the test unless the line
//     before its fence is `<!-- go fragment: WHY -->`, saying why it cannot
//     be a whole file; a marked fragment is skipped (and logged).
//
// TestDocsGoBlocksCompile checks that; TestDocsGoProgramsRun then runs the
// programs that talk to a Runnel server against a real one.

// goBlock is one ```go block of a doc.
type goBlock struct {
	file string // path from the repository root
	line int    // line of the block's first code line
	code string
	mark string // the fragment mark before the fence, if any
}

var fragmentMark = regexp.MustCompile(`^<!--\s*go fragment:\s*(.+?)\s*-->$`)

// goBlocks returns the ```go blocks of docs (name → text), in file order.
func goBlocks(t *testing.T, docs map[string]string) []goBlock {
	t.Helper()
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []goBlock
	for _, name := range names {
		lines := strings.Split(docs[name], "\n")
		for i := 0; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) != "```go" {
				continue
			}
			b := goBlock{file: name, line: i + 2}
			if i > 0 {
				if m := fragmentMark.FindStringSubmatch(strings.TrimSpace(lines[i-1])); m != nil {
					b.mark = m[1]
				}
			}
			var code strings.Builder
			j := i + 1
			for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
				code.WriteString(lines[j] + "\n")
			}
			if j == len(lines) {
				t.Errorf("%s:%d: ```go block is not closed", name, i+1)
			}
			b.code = code.String()
			out = append(out, b)
			i = j
		}
	}
	return out
}

// packageName returns a block's package name, or "" when it has no package
// clause (a fragment).
func packageName(code string) string {
	f, err := parser.ParseFile(token.NewFileSet(), "", code, parser.PackageClauseOnly)
	if err != nil {
		return ""
	}
	return f.Name.Name
}

// offlineGo runs the go command in dir without the network.
func offlineGo(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOTOOLCHAIN=local")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// blockPos matches a compiler or vet position in a scratch file: the
// block's directory, the file's line and column.
var blockPos = regexp.MustCompile(`(?:\./)?(?:\S*/)?(b\d+)/(?:main|zz_doc_block_\d+)\.go:(\d+)(:\d+)?`)

// docPositions rewrites the positions of scratch files in out to the
// docs' file:line, so a failure points at the doc.
func docPositions(out string, byDir map[string]goBlock) string {
	return blockPos.ReplaceAllStringFunc(out, func(s string) string {
		m := blockPos.FindStringSubmatch(s)
		b, ok := byDir[m[1]]
		if !ok {
			return s
		}
		var n int
		fmt.Sscan(m[2], &n)
		return fmt.Sprintf("%s:%d%s", b.file, b.line+n-1, m[3])
	})
}

func TestDocsGoBlocksCompile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, docFiles(t))
	if len(blocks) == 0 {
		t.Fatal("no ```go blocks found in README.md and docs/*.md")
	}
	var mains, others []goBlock
	for _, b := range blocks {
		switch pkg := packageName(b.code); {
		case pkg == "" && b.mark != "":
			t.Logf("%s:%d: fragment, not compiled: %s", b.file, b.line, b.mark)
		case pkg == "":
			t.Errorf("%s:%d: ```go block has no package clause: make it a whole file a reader can paste, or mark it <!-- go fragment: WHY --> on the line before its fence", b.file, b.line)
		case pkg == "main":
			if f, err := format.Source([]byte(b.code)); err == nil && string(f) != b.code {
				t.Errorf("%s:%d: ```go program is not gofmt'd; gofmt would make it:\n%s", b.file, b.line, f)
			}
			mains = append(mains, b)
		default:
			others = append(others, b)
		}
	}
	t.Logf("%d ```go blocks: %d programs, %d package files", len(blocks), len(mains), len(others))
	if len(mains) > 0 {
		compilePrograms(t, root, mains)
	}
	for i, b := range others {
		compileInPackage(t, root, i, b)
	}
}

// compilePrograms builds and vets the package main blocks, each a program
// in one scratch module that uses this repository.
func compilePrograms(t *testing.T, root string, blocks []goBlock) {
	dir, byDir := scratchModule(t, root, blocks, nil)
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
		out, err := offlineGo(t, dir, []string{"GOFLAGS=-mod=mod"}, args...)
		if err != nil {
			t.Errorf("go %s of the docs' Go programs: %v\n%s", args[0], err, docPositions(out, byDir))
			return
		}
	}
}

// scratchModule writes blocks as the programs ./b0, ./b1, ... of a module
// that requires this repository (replaced by root), each block's code
// passed through edit when it is not nil.
func scratchModule(t *testing.T, root string, blocks []goBlock, edit func(string) string) (string, map[string]goBlock) {
	t.Helper()
	dir := t.TempDir()
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go \S+$`).FindString(string(goMod))
	mod := fmt.Sprintf("module example.com/runneldocs\n\n%s\n\nrequire github.com/runnel-dev/runnel v0.0.0\n\nreplace github.com/runnel-dev/runnel => %s\n", goLine, root)
	write(t, filepath.Join(dir, "go.mod"), mod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.sum"), string(sum))
	byDir := map[string]goBlock{}
	for i, b := range blocks {
		name := fmt.Sprintf("b%d", i)
		byDir[name] = b
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		code := b.code
		if edit != nil {
			code = edit(code)
		}
		write(t, filepath.Join(dir, name, "main.go"), code)
	}
	return dir, byDir
}

// compileInPackage builds the repository's package named like b's package
// clause with b as an extra file of it.
func compileInPackage(t *testing.T, root string, i int, b goBlock) {
	pkg := packageName(b.code)
	dirs := packageDirs(t, root, pkg)
	if len(dirs) != 1 {
		t.Errorf("%s:%d: ```go block is package %s, which is the package of %d directories (%v); it needs exactly one to be built in", b.file, b.line, pkg, len(dirs), dirs)
		return
	}
	scratch := t.TempDir()
	name := fmt.Sprintf("b%d", i)
	src := filepath.Join(scratch, name, fmt.Sprintf("zz_doc_block_%d.go", i))
	if err := os.Mkdir(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, src, b.code)
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(dirs[0], filepath.Base(src)): src,
	}})
	if err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(scratch, "overlay.json")
	write(t, ov, string(overlay))
	rel, _ := filepath.Rel(root, dirs[0])
	out, err := offlineGo(t, root, nil, "build", "-overlay", ov, "-o", os.DevNull, "./"+filepath.ToSlash(rel))
	if err != nil {
		// The compiler names the overlaid file by its place in the package.
		out = strings.ReplaceAll(out, filepath.Base(src), name+"/"+filepath.Base(src))
		t.Errorf("go build of ./%s with the block at %s:%d as a file of it: %v\n%s", rel, b.file, b.line, err, docPositions(out, map[string]goBlock{name: b}))
	}
}

// packageDirs returns the directories under root whose non-test Go files
// are package pkg.
func packageDirs(t *testing.T, root, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || seen[filepath.Dir(path)] {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly)
		if err == nil && f.Name.Name == pkg {
			seen[filepath.Dir(path)] = true
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// docRun is how TestDocsGoProgramsRun runs one of the docs' programs.
type docRun struct {
	file, has string // the block: the one of file whose code holds has
	env       []string
	// want is what its output (stdout and stderr) must show; with
	// untilStopped the program runs until it shows it, then gets SIGTERM
	// and must exit 0, as a consumer handing its shards off does.
	want         *regexp.Regexp
	untilStopped bool
}

// TestDocsGoProgramsRun runs the docs' Go programs in the order a reader
// would (list the shards, produce, consume through the server, consume
// with leases in PostgreSQL) against a real server, with the address they
// are written with (http://127.0.0.1:7070) replaced by the server's. Each
// must do what its doc says: a program renamed or removed from the docs
// fails the test, so its row here is updated with it.
func TestDocsGoProgramsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the docs' programs and starts a server and PostgreSQL")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pg := testsrv.StartPostgres(t)
	s := testbin.Start(t, testbin.Options{})
	s.CreateStream("clicks", 2)
	home := t.TempDir()
	aws := []string{"HOME=" + home, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_KINESIS=" + s.URL, "RUNNEL_TOKEN="}
	runs := []docRun{
		{file: "docs/kinesis-api.md", has: "client.ListShards(",
			want: regexp.MustCompile(`(?m)^shardId-\d+\nshardId-\d+\n$`)},
		{file: "docs/clients.md", has: "producer.New(",
			want: regexp.MustCompile(`record user-17: shard shardId-\d+, sequence number \d+`)},
		{file: "docs/clients.md", has: "consumer.Runnel(", untilStopped: true,
			want: regexp.MustCompile(`shardId-\d+ user-17 \{"page":"/"\}`)},
		{file: "docs/clients.md", has: "consumer.PostgresLeases(", untilStopped: true,
			env:  []string{"LEASES_DSN=" + pg.DSN},
			want: regexp.MustCompile(`shardId-\d+ user-17 \{"page":"/"\}`)},
	}
	var blocks []goBlock
	for _, b := range goBlocks(t, docFiles(t)) {
		if packageName(b.code) == "main" {
			blocks = append(blocks, b)
		}
	}
	dir, byDir := scratchModule(t, root, blocks, func(code string) string {
		return strings.ReplaceAll(code, "http://127.0.0.1:7070", s.URL)
	})
	bin := filepath.Join(dir, "bin") + string(filepath.Separator)
	if out, err := offlineGo(t, dir, []string{"GOFLAGS=-mod=mod"}, "build", "-o", bin, "./..."); err != nil {
		t.Fatalf("go build of the docs' Go programs: %v\n%s", err, docPositions(out, byDir))
	}
	for _, r := range runs {
		var name string
		for n, b := range byDir {
			if b.file == r.file && strings.Contains(b.code, r.has) {
				if name != "" {
					t.Fatalf("two Go programs of %s hold %q", r.file, r.has)
				}
				name = n
			}
		}
		if name == "" {
			t.Fatalf("no Go program of %s holds %q: update TestDocsGoProgramsRun's runs", r.file, r.has)
		}
		b := byDir[name]
		t.Logf("running the program at %s:%d", b.file, b.line)
		runDocProgram(t, filepath.Join(bin, name), append(append([]string{}, aws...), r.env...), r, fmt.Sprintf("%s:%d", b.file, b.line))
	}
}

// runDocProgram runs one of the docs' programs as r says; where names the
// block.
func runDocProgram(t *testing.T, path string, env []string, r docRun, where string) {
	t.Helper()
	var out testutil.Buffer
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	}()
	if r.untilStopped {
		if !testutil.Within(time.Minute, func() bool { return r.want.MatchString(out.String()) }) {
			t.Fatalf("the program at %s did not print a match of %s within a minute; its output:\n%s", where, r.want, out.String())
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		done <- err // for the deferred wait
		if err != nil {
			t.Fatalf("the program at %s: %v; its output:\n%s", where, err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("the program at %s did not exit within a minute; its output:\n%s", where, out.String())
	}
	if !r.want.MatchString(out.String()) {
		t.Errorf("the program at %s printed no match of %s; its output:\n%s", where, r.want, out.String())
	}
}
