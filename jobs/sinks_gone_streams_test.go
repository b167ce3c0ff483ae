package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// A job whose output stream was deleted (and created again, by hand or by
// the job's own start) resumes from its checkpoint: the output the
// checkpoint held staged for the deleted stream is dropped with a warning,
// not put into the new stream, and the job goes on writing into the new
// one. (It could not resume at all before; earlier still, the old records
// were put into the new stream.)
func TestResumeAfterOutputStreamDeleted(t *testing.T) {
	for _, recreate := range []bool{true, false} {
		name := "created-again-by-the-job"
		if recreate {
			name = "created-again-by-hand"
		}
		t.Run(name, func(t *testing.T) {
			st, m, _ := rareCheckpointTarget(t)
			if _, err := m.Savepoint("tgt", true); err != nil {
				t.Fatal(err)
			}
			if n := streamCount(t, st, "out-a"); n != 5 {
				t.Fatalf("out-a holds %d records after the savepoint, want 5", n)
			}
			if err := st.DeleteStream("out-a"); err != nil {
				t.Fatal(err)
			}
			if recreate {
				if _, err := st.CreateStream("out-a", 1, streams.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := m.Resume("tgt"); err != nil {
				t.Fatalf("resume: %v", err)
			}
			info, err := m.Get("tgt")
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, w := range info.Warnings {
				found = found || (strings.Contains(w, "sink out") && strings.Contains(w, `5 records staged at checkpoint epoch`) && strings.Contains(w, `"out-a"`))
			}
			if !found {
				t.Fatalf("warnings %q, want one saying sink out's 5 records staged for out-a were dropped", info.Warnings)
			}
			putN(t, st, "tgt-in", 5, 3)
			if !testutil.Within(30*time.Second, func() bool { return sourceRead(t, m, "tgt") >= 3 }) {
				t.Fatal("the resumed job did not read its 3 records")
			}
			if err := m.Stop("tgt"); err != nil {
				t.Fatal(err)
			}
			if n := streamCount(t, st, "out-a"); n != 3 {
				t.Fatalf("the new out-a holds %d records, want the 3 read after the resume", n)
			}
		})
	}
}
