package agent

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/internal/testutil"
)

var chaosSteps = flag.Int("chaos.steps", 100, "writer actions in TestAgentChaos (more: a longer run)")

// The chaos test's agent settings. The writer keeps its own delays well
// under these: a partial line is completed, a multi-line record's lines
// written and a renamed file's last lines appended within chaosQuick.
const (
	chaosBuffered  = 100
	chaosRotWait   = time.Second
	chaosMLTimeout = 2 * time.Second
	chaosQuick     = 20 * time.Millisecond
)

// chaosRec is one record the writer wrote: a line, or in multi-line runs
// a start line and its continuation lines.
type chaosRec struct {
	text     string
	where    string // file name and offset when written
	optional string // why the contract lets it be missing; "" when it must arrive
}

// chaosFile is one file (one inode) the writer made.
type chaosFile struct {
	name string // its name now, in logs/
	ino  uint64
	f    *os.File // the writer's O_APPEND handle; nil once closed
	recs []int    // records it holds since its last truncation
	size int64
	lost string // set when the file's unread lines may be lost for good
}

// chaosEpisode is one run of the agent and how it ended.
type chaosEpisode struct {
	afterKill bool           // the run before this one was SIGKILLed
	counts    map[string]int // the stream's records when this run had ended
}

type chaos struct {
	t       *testing.T
	rng     *rand.Rand
	srv     *testserver.Server
	bin     string
	logs    string
	cfgPath string
	cpPath  string
	ml      bool
	start   time.Time

	recs    []chaosRec
	byText  map[string]int
	live    map[string]*chaosFile // by name, in the glob
	rotated []*chaosFile          // renamed out of the glob, still on disk
	nameSeq int

	mu      sync.Mutex
	log     []string
	agentUp atomic.Bool
	out     strings.Builder // the agents' own output
}

func (c *chaos) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, fmt.Sprintf("%7.3fs ", time.Since(c.start).Seconds())+fmt.Sprintf(format, args...))
}

// TestAgentChaos: a writer performs a seeded random sequence of appends
// (lines completed in a second write), renames out of the glob (with
// lines appended to the renamed file and a new file at the name, at
// once or later), copy-truncates, truncates, deletes (of live and of
// rotated files; a new file then often reuses the inode) and new files,
// while the real `runnel agent` runs, is stopped with SIGTERM or SIGKILLed
// and restarted at random moments; a last --once run follows. Then every
// record the contract requires is in the stream, whole (multi-line runs:
// joined as written), nothing arrives that was not written, and repeats
// come only from runs that followed a SIGKILL (at most twice the
// producer's buffer each). A record may be missing only when its file was
// deleted or truncated after it was written, or renamed out of the glob
// while the checkpoint did not list the file as it then was (inode, first
// bytes, an offset within it): a restarted agent cannot find it then.
// -seed replays a run's choices; -chaos.steps makes it longer.
func TestAgentChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for several seconds")
	}
	seed := testutil.Seed(t)
	c := &chaos{t: t, rng: rand.New(rand.NewPCG(seed, 15)), byText: map[string]int{}, live: map[string]*chaosFile{}, start: time.Now()}
	c.srv = testserver.Start(t)
	c.srv.CreateStream("chaos", 2)
	c.bin = testserver.Binary(t)
	dir := t.TempDir()
	c.logs = filepath.Join(dir, "logs")
	os.Mkdir(c.logs, 0o755)
	c.cpPath = filepath.Join(dir, "checkpoints.json")
	c.ml = c.rng.IntN(2) == 0
	flow := fmt.Sprintf("{files: %q, stream: chaos, format: text}", filepath.Join(c.logs, "*.log"))
	if c.ml {
		flow = fmt.Sprintf("{files: %q, stream: chaos, format: text, multiline_start: '^S\\d+ ', multiline_timeout: %s}",
			filepath.Join(c.logs, "*.log"), chaosMLTimeout)
	}
	cfg := fmt.Sprintf("server: %s\ncheckpoint: %s\nscan_interval: 20ms\nrotate_wait: %s\nlinger: 5ms\nmax_buffered_records: %d\nflows:\n  - %s\n",
		c.srv.URL, c.cpPath, chaosRotWait, chaosBuffered, flow)
	c.cfgPath = filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(c.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("multi-line: %v, steps: %d", c.ml, *chaosSteps)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer(rand.New(rand.NewPCG(seed, 16)), *chaosSteps)
	}()
	episodes := c.control(rand.New(rand.NewPCG(seed, 17)), writerDone)
	c.check(episodes)
}

// control runs the agent, stopping (SIGTERM) or killing it at random
// moments and starting it again, until the writer is done; then a last
// --once run. It returns the stream's counts after each run.
func (c *chaos) control(rng *rand.Rand, writerDone chan struct{}) []chaosEpisode {
	var eps []chaosEpisode
	afterKill := false
	for done := false; !done; {
		cmd := c.run()
		c.agentUp.Store(true)
		c.logf("agent started (pid %d)", cmd.Process.Pid)
		select {
		case <-writerDone:
			done = true
		case <-time.After(c.runFor(rng)):
		}
		kill := rng.IntN(2) == 0
		if kill {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
		} else {
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
				kill = true // SIGTERM came before the agent set its handler: it was killed
			} else if err != nil {
				c.t.Errorf("agent stopped with SIGTERM: %v", err)
			}
		}
		c.agentUp.Store(false)
		c.logf("agent %s", map[bool]string{true: "killed", false: "stopped"}[kill])
		eps = append(eps, chaosEpisode{afterKill: afterKill, counts: c.counts()})
		afterKill = kill
		if !done {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		}
	}
	c.logf("agent --once")
	cmd := c.run("--once")
	if err := cmd.Wait(); err != nil {
		c.t.Errorf("agent --once: %v", err)
	}
	return append(eps, chaosEpisode{afterKill: afterKill, counts: c.counts()})
}

// runFor is how long a run lasts: mostly shorter than rotate_wait, so
// that rotated files are left to the next run, sometimes long enough for
// a run to finish and close them.
func (c *chaos) runFor(rng *rand.Rand) time.Duration {
	if rng.IntN(4) == 0 {
		return chaosRotWait + time.Duration(rng.IntN(2000))*time.Millisecond
	}
	return time.Duration(100+rng.IntN(900)) * time.Millisecond
}

func (c *chaos) run(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append([]string{"agent", "--config", c.cfgPath, "--log-level", "info"}, args...)...)
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &c.mu, b: &c.out}, &lockedWriter{mu: &c.mu, b: &c.out}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	return cmd
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// counts reads the stream: how many times each message arrived.
func (c *chaos) counts() map[string]int {
	m := map[string]int{}
	for _, r := range c.srv.ReadAll(c.t, "chaos") {
		var rec struct{ Message string }
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			c.t.Fatalf("record %q: %v", r.Data, err)
		}
		m[rec.Message]++
	}
	return m
}

// writer performs steps random actions on the files, then completes
// everything (no partial line or record is left).
func (c *chaos) writer(rng *rand.Rand, steps int) {
	c.create(c.newName())
	for i := 0; i < steps; i++ {
		switch n := rng.IntN(100); {
		case n < 55:
			c.appendSome(rng, c.pickLive(rng), 1+rng.IntN(6))
		case n < 65:
			c.renameRotate(rng)
		case n < 71:
			c.copyTruncate(rng, rng.IntN(3) > 0)
		case n < 75:
			c.deleteLive(rng)
		case n < 81:
			c.deleteRotated(rng)
		case n < 85:
			if len(c.live) < 5 {
				c.create(c.newName())
			}
		case n < 98:
			time.Sleep(time.Duration(20+rng.IntN(200)) * time.Millisecond)
		default: // long enough for files to be idle for rotate_wait
			time.Sleep(chaosRotWait + time.Duration(rng.IntN(500))*time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
	}
	for _, f := range c.live {
		f.f.Close()
	}
	c.logf("writer done: %d records", len(c.recs))
}

func (c *chaos) newName() string {
	c.nameSeq++
	return fmt.Sprintf("f%d.log", c.nameSeq)
}

func (c *chaos) create(name string) *chaosFile {
	p := filepath.Join(c.logs, name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Error(err)
		return nil
	}
	fi, _ := f.Stat()
	_, ino, _ := fileID(fi)
	cf := &chaosFile{name: name, ino: ino, f: f}
	c.live[name] = cf
	c.logf("create %s (inode %d)", name, ino)
	return cf
}

func (c *chaos) pickLive(rng *rand.Rand) *chaosFile {
	names := make([]string, 0, len(c.live))
	for n := range c.live {
		names = append(names, n)
	}
	if len(names) == 0 {
		return c.create(c.newName())
	}
	sort.Strings(names)
	return c.live[names[rng.IntN(len(names))]]
}

// record makes a unique record: its number, a payload of random length
// (some cross the 256-byte fingerprint), and in multi-line runs 0 to 3
// continuation lines.
func (c *chaos) record(rng *rand.Rand) string {
	id := len(c.recs)
	pay := func() string {
		n := rng.IntN(120)
		if rng.IntN(10) == 0 {
			n = 200 + rng.IntN(400)
		}
		if rng.IntN(200) == 0 {
			n = 300_000 + rng.IntN(100_000) // crosses a read chunk
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz0123456789 -_.:"[rng.IntN(41)]
		}
		return strings.TrimSpace(string(b)) + "."
	}
	if !c.ml {
		return fmt.Sprintf("L%06d %s", id, pay())
	}
	s := fmt.Sprintf("S%06d %s", id, pay())
	for k := rng.IntN(4); k > 0; k-- {
		s += fmt.Sprintf("\n  c%06d.%d %s", id, k, pay())
	}
	return s
}

// appendSome writes n records to f; the last is sometimes written in two
// parts (a partial line first, completed shortly after).
func (c *chaos) appendSome(rng *rand.Rand, f *chaosFile, n int) {
	if f == nil {
		return
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		text := c.record(rng)
		c.recs = append(c.recs, chaosRec{text: text, where: fmt.Sprintf("%s@%d", f.name, f.size+int64(b.Len()))})
		c.byText[text] = len(c.recs) - 1
		f.recs = append(f.recs, len(c.recs)-1)
		if f.lost != "" {
			c.recs[len(c.recs)-1].optional = f.lost
		}
		b.WriteString(text + "\n")
	}
	data := b.String()
	split := len(data)
	if rng.IntN(3) == 0 {
		split = rng.IntN(len(data))
	}
	c.write(f, data[:split])
	if split < len(data) {
		time.Sleep(time.Duration(rng.IntN(int(chaosQuick))))
		c.write(f, data[split:])
	}
	c.logf("append %s: records %d..%d (split at %d of %d bytes)", f.name, len(c.recs)-n, len(c.recs)-1, split, len(data))
}

func (c *chaos) write(f *chaosFile, s string) {
	if _, err := f.f.WriteString(s); err != nil {
		c.t.Error(err)
	}
	f.size += int64(len(s))
}

// known reports whether the checkpoint lists the file as it is now (its
// inode, its first bytes, an offset within it), waiting a little for
// that while the agent runs: a file renamed out of the glob is found
// again after a restart only through the checkpoint.
func (c *chaos) known(f *chaosFile) bool {
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		ps, _ := readCheckpoint(c.cpPath)
		for _, p := range ps {
			if p.Inode != f.ino {
				continue
			}
			r, err := os.Open(filepath.Join(c.logs, f.name))
			if err != nil {
				continue
			}
			fp, n, err := fingerprint(r, p.FPLen)
			r.Close()
			if err == nil && n == p.FPLen && fp == p.FP && f.size >= p.Offset {
				return true
			}
		}
		if !c.agentUp.Load() || time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// renameRotate renames a live file out of the glob (NAME.N), sometimes
// appends to it through the writer's open handle, then creates the new
// file at the name at once or leaves that to a later action.
func (c *chaos) renameRotate(rng *rand.Rand) {
	f := c.pickLive(rng)
	if f == nil || len(f.recs) == 0 {
		return
	}
	known := c.known(f)
	old := f.name
	c.nameSeq++
	f.name = fmt.Sprintf("%s.%d", old, c.nameSeq)
	if err := os.Rename(filepath.Join(c.logs, old), filepath.Join(c.logs, f.name)); err != nil {
		c.t.Error(err)
	}
	delete(c.live, old)
	c.rotated = append(c.rotated, f)
	c.logf("rename %s -> %s (inode %d; in the checkpoint: %v)", old, f.name, f.ino, known)
	if !known {
		c.markLost(f, "renamed out of the glob before the checkpoint knew "+f.name)
	}
	if rng.IntN(2) == 0 {
		renamed := time.Now()
		time.Sleep(time.Duration(rng.IntN(int(chaosQuick))))
		n := 1 + rng.IntN(3)
		c.appendSome(rng, f, n)
		if late := time.Since(renamed); late > chaosRotWait/2 {
			// The writer was held up: the agent may have closed the file.
			for _, i := range f.recs[len(f.recs)-n:] {
				if c.recs[i].optional == "" {
					c.recs[i].optional = fmt.Sprintf("appended %v after the rename", late)
				}
			}
		}
	}
	f.f.Close()
	f.f = nil
	if rng.IntN(3) > 0 {
		c.create(old)
	}
}

// copyTruncate copies a live file aside (out of the glob) and truncates
// it, sometimes with records appended in between (lost by both);
// without copy it is only truncated.
func (c *chaos) copyTruncate(rng *rand.Rand, copy bool) {
	f := c.pickLive(rng)
	if f == nil {
		return
	}
	p := filepath.Join(c.logs, f.name)
	if copy {
		b, _ := os.ReadFile(p)
		c.nameSeq++
		cp := filepath.Join(c.logs, fmt.Sprintf("%s.copy%d", f.name, c.nameSeq))
		os.WriteFile(cp, b, 0o644)
		if fi, err := os.Stat(cp); err == nil {
			_, ino, _ := fileID(fi)
			c.logf("copy %s to %s (inode %d)", f.name, filepath.Base(cp), ino)
		}
		if rng.IntN(3) == 0 {
			c.appendSome(rng, f, 1+rng.IntN(2))
		}
	}
	c.markLost(f, fmt.Sprintf("truncated (copy: %v) after it was written", copy))
	if err := f.f.Truncate(0); err != nil {
		c.t.Error(err)
	}
	f.recs, f.size, f.lost = nil, 0, ""
	c.logf("truncate %s (copied first: %v)", f.name, copy)
}

func (c *chaos) deleteLive(rng *rand.Rand) {
	f := c.pickLive(rng)
	if f == nil {
		return
	}
	os.Remove(filepath.Join(c.logs, f.name))
	f.f.Close()
	delete(c.live, f.name)
	c.markLost(f, "its file was deleted")
	c.logf("delete %s (inode %d)", f.name, f.ino)
	if rng.IntN(2) == 0 {
		c.create(f.name)
	}
}

func (c *chaos) deleteRotated(rng *rand.Rand) {
	if len(c.rotated) == 0 {
		return
	}
	i := rng.IntN(len(c.rotated))
	f := c.rotated[i]
	c.rotated = append(c.rotated[:i], c.rotated[i+1:]...)
	os.Remove(filepath.Join(c.logs, f.name))
	c.markLost(f, "its rotated file was deleted")
	c.logf("delete %s (inode %d)", f.name, f.ino)
}

// markLost lets the file's records written so far (and those written to
// it later, for a file renamed out unknown) be missing.
func (c *chaos) markLost(f *chaosFile, why string) {
	for _, i := range f.recs {
		if c.recs[i].optional == "" {
			c.recs[i].optional = why
		}
	}
	if strings.HasPrefix(why, "renamed") {
		f.lost = why
	}
}

// check compares the stream with the model.
func (c *chaos) check(eps []chaosEpisode) {
	t := c.t
	final := eps[len(eps)-1].counts
	var problems []string
	for text, n := range final {
		if _, ok := c.byText[text]; !ok {
			problems = append(problems, fmt.Sprintf("delivered %d time(s) but never written (torn or joined wrongly): %.200q", n, text))
		}
	}
	missing, optionalLost := 0, 0
	for i, r := range c.recs {
		if final[r.text] > 0 {
			continue
		}
		if r.optional != "" {
			optionalLost++
			continue
		}
		missing++
		if missing <= 30 {
			problems = append(problems, fmt.Sprintf("record %d (%s) never delivered: %.80q", i, r.where, r.text))
		}
	}
	repeats := 0
	prev := map[string]int{}
	for k, ep := range eps {
		n := 0
		var some []string
		for text, cur := range ep.counts {
			if extra := cur - prev[text] - boolInt(prev[text] == 0); extra > 0 {
				n += extra
				if len(some) < 5 {
					some = append(some, fmt.Sprintf("%.40q (now %d)", text, cur))
				}
			}
		}
		repeats += n
		limit := 0
		if ep.afterKill {
			limit = 2 * chaosBuffered
		}
		if n > limit {
			problems = append(problems, fmt.Sprintf("run %d (after a %s) repeated %d records, more than %d: %s", k,
				map[bool]string{true: "SIGKILL", false: "clean stop"}[ep.afterKill], n, limit, strings.Join(some, ", ")))
		}
		prev = ep.counts
	}
	t.Logf("%d records written, %d runs, %d repeats, %d records allowed missing and missing", len(c.recs), len(eps), repeats, optionalLost)
	if missing > 30 {
		problems = append(problems, fmt.Sprintf("... %d records never delivered in all", missing))
	}
	if os.Getenv("CHAOS_LOG") != "" {
		t.Logf("action log:\n%s", strings.Join(c.log, "\n"))
	}
	if len(problems) > 0 || t.Failed() {
		t.Errorf("action log:\n%s\nagent output:\n%s\nproblems:\n%s", strings.Join(c.log, "\n"), c.out.String(), strings.Join(problems, "\n"))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
