package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestAgentKill9 runs the real `runnel agent` while a writer appends lines
// and rotates the file by rename, and SIGKILLs the agent at random moments
// and restarts it. After a last --once run every line is in the stream,
// and the repeats are bounded by what each kill can have left
// unacknowledged or not yet checkpointed (the producer's buffer).
func TestAgentKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the real binary for several seconds")
	}
	seed := testutil.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 9))
	srv := testserver.Start(t)
	srv.CreateStream("k9", 2)
	bin := testserver.Binary(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.Mkdir(logs, 0o755)
	const buffered = 200
	cfgPath := filepath.Join(dir, "agent.yaml")
	cfg := fmt.Sprintf(`server: %s
checkpoint: %s
scan_interval: 30ms
rotate_wait: 200ms
linger: 10ms
max_buffered_records: %d
flows:
  - {files: %q, stream: k9, format: json}
`, srv.URL, filepath.Join(dir, "checkpoints.json"), buffered, filepath.Join(logs, "app.log*"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// The writer: lines numbered in order, a rename rotation every 400.
	written := 0
	var wmu sync.Mutex
	stopWriting := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		wrng := rand.New(rand.NewPCG(seed, 10))
		rotations := 0
		f, _ := os.OpenFile(filepath.Join(logs, "app.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		for {
			select {
			case <-stopWriting:
				f.Close()
				return
			default:
			}
			var b bytes.Buffer
			wmu.Lock()
			for n := 1 + wrng.IntN(50); n > 0; n-- {
				fmt.Fprintf(&b, `{"i":%d,"pad":"%x"}`+"\n", written, wrng.Uint64())
				written++
				if written%400 == 0 {
					f.Write(b.Bytes())
					b.Reset()
					f.Close()
					rotations++
					os.Rename(filepath.Join(logs, "app.log"), filepath.Join(logs, fmt.Sprintf("app.log.%d", rotations)))
					f, _ = os.OpenFile(filepath.Join(logs, "app.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				}
			}
			wmu.Unlock()
			f.Write(b.Bytes())
			time.Sleep(time.Duration(wrng.IntN(15)) * time.Millisecond)
		}
	}()

	var out bytes.Buffer
	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"agent", "--config", cfgPath, "--log-level", "warn"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kills := 0
	end := time.Now().Add(8 * time.Second)
	for time.Now().Before(end) {
		cmd := run()
		time.Sleep(time.Duration(100+rng.IntN(600)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		kills++
	}
	close(stopWriting)
	<-writerDone
	cmd := run("--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent --once: %v\n%s", err, out.String())
	}

	count := map[int]int{}
	for _, r := range srv.ReadAll(t, "k9") {
		var rec struct{ I int }
		if err := jsonUnmarshal(r.Data, &rec); err != nil {
			t.Fatalf("record %q: %v", r.Data, err)
		}
		count[rec.I]++
	}
	var missing []int
	dups := 0
	for i := 0; i < written; i++ {
		switch n := count[i]; {
		case n == 0:
			missing = append(missing, i)
		case n > 1:
			dups += n - 1
		}
	}
	sort.Ints(missing)
	t.Logf("%d lines written, %d kills, %d repeats", written, kills, dups)
	if len(missing) > 0 {
		t.Fatalf("%d lines never delivered, first %v\nagent output:\n%s", len(missing), missing[:min(20, len(missing))], out.String())
	}
	if limit := kills * 2 * buffered; dups > limit {
		t.Fatalf("%d repeats over %d kills: more than the unacknowledged records a kill can leave (%d)", dups, kills, limit)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
