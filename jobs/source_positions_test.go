package jobs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/streams"
)

// TestResumeAfterStreamRecreated: a job resumed after its stream was
// deleted and created again reads the new stream from its start; the
// checkpoint's positions, of the old stream, would skip the new stream's
// first records.
func TestResumeAfterStreamRecreated(t *testing.T) {
	e := newLifeEnv(t)
	e.running(5)
	if err := e.m.Stop("life"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteStream("life-in"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateStream("life-in", 1, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.put(8)
	if _, err := e.m.Resume("life"); err != nil {
		t.Fatal(err)
	}
	e.waitRead("life", 8) // all of the new stream, not its records after position 5
	in, err := e.m.Get("life")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(in.Warnings, "\n"), "stream life-in was deleted and created again since checkpoint") {
		t.Fatalf("warnings %q: want one saying the stream was created again", in.Warnings)
	}
}

// TestDeployOntoAnotherStream: a deploy whose file reads another stream
// keeps the operators' state but not the old stream's positions.
func TestDeployOntoAnotherStream(t *testing.T) {
	e := newLifeEnv(t)
	e.running(5)
	if _, err := e.st.CreateStream("other-in", 1, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []streams.PutRecord
	for i := range 7 {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: []byte(`{"page":"/x"}`)})
	}
	if _, err := e.st.Put(context.Background(), "other-in", recs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Deploy("life", []byte(strings.Replace(lifeJob, "stream: life-in", "stream: other-in", 1)), DeploySavepoint); err != nil {
		t.Fatal(err)
	}
	e.waitRead("life", 7)
	in, _ := e.m.Get("life")
	if !strings.Contains(strings.Join(in.Warnings, "\n"), "holds positions in stream life-in; the job now reads stream other-in") {
		t.Fatalf("warnings %q", in.Warnings)
	}
}
