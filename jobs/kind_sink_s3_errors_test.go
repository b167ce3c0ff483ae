package jobs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// Rows the S3 sink cannot place (no field for its partition template) go
// to its error output and show as the sink's dead-lettered count in the
// job's status, not only in the log.
func TestS3ErrorRowsInJobStatus(t *testing.T) {
	gw := testsrv.StartS3(t, "lake")
	for _, kv := range gw.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	st, dir, log := managerStore(t)
	if _, err := st.CreateStream("in", 1, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []streams.PutRecord
	for i := range 30 {
		data := fmt.Sprintf(`{"page":"/p/%d","n":%d}`, i%3, i)
		if i%5 == 0 {
			data = fmt.Sprintf(`{"n":%d}`, i) // no page: cannot be partitioned
		}
		recs = append(recs, streams.PutRecord{PartitionKey: "k", Data: []byte(data)})
	}
	if _, err := st.Put(context.Background(), "in", recs); err != nil {
		t.Fatal(err)
	}
	m := startManager(t, ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: log})
	job := `name: lake
source: {stream: in}
operators:
  - {id: pass, map: "r => r"}
sinks:
  - id: out
    input: pass
    s3:
      endpoint: ` + gw.Endpoint + `
      region: ` + testsrv.S3Region + `
      path_style: true
      bucket: lake
      prefix: rows/
      partition: "page={field:page}/"
      format: jsonl
      error_prefix: errors/
`
	if _, err := m.Submit([]byte(job)); err != nil {
		t.Fatal(err)
	}
	var dead int64
	ok := testutil.Within(30*time.Second, func() bool {
		in, err := m.Get("lake")
		if err != nil {
			return false
		}
		for _, o := range in.Operators {
			if o.ID == "out" {
				dead = o.DeadLettered
			}
		}
		return dead == 6
	})
	if !ok {
		t.Fatalf("the sink's dead_lettered is %d, want the 6 rows without a page", dead)
	}
}
