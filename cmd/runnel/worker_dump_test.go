package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// dumpWorkers logs, for a failed cluster test, what each worker wrote
// since its last start and, from each running one, the job's cluster view
// (tasks, partitions, lags) and its task and lag metrics, so that a stall
// (every partition consumed, windows not closed) can be told from a loss
// or a stuck consumer. The workers must log at info level (their --listen
// address is logged there).
func dumpWorkers(t *testing.T, job string, workers []*workerProc) {
	t.Helper()
	for _, w := range workers {
		w.mu.Lock()
		running, name := w.cmd != nil, ""
		if w.log != nil {
			name = w.log.Name()
		}
		w.mu.Unlock()
		b, _ := os.ReadFile(name)
		t.Logf("worker %s (running: %v), its log since its last start:\n%s", w.id, running, testutil.Tail(string(b), 6000))
		m := listenRE.FindAllSubmatch(b, -1)
		if !running || len(m) == 0 {
			continue
		}
		addr := string(m[len(m)-1][1])
		for _, path := range []string{"/api/v1/jobs/" + job + "/cluster", "/metrics"} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Logf("worker %s: GET %s: %v", w.id, path, err)
				continue
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			text := string(body)
			if path == "/metrics" {
				var keep []string
				for _, line := range strings.Split(text, "\n") {
					if strings.HasPrefix(line, "runnel_worker_") && !strings.Contains(line, "_bucket{") {
						keep = append(keep, line)
					}
				}
				text = strings.Join(keep, "\n")
			}
			t.Logf("worker %s: GET %s:\n%s", w.id, path, testutil.Tail(text, 8000))
		}
	}
}
