package jobs

import (
	"fmt"

	"github.com/runnel-dev/runnel/streams"
)

// shardsWarning says when a job file's source.shards does not match the
// stream it reads: shards apply only when the job creates the stream, as
// a Kinesis consumer (Flink's, the KCL) reads the shards a stream has. The
// job runs on the stream's shards; the warning is in its status and in
// the submit's answer, and is not an error so that a file written for a
// new stream keeps working on an existing one.
func shardsWarning(st *streams.Store, spec *Spec) string {
	name := spec.Source.stream()
	if st == nil || name == "" || spec.info == nil {
		return ""
	}
	if _, set := spec.info.pos["source.shards"]; !set {
		return ""
	}
	n, err := st.OpenShardCount(name)
	if err != nil || n == spec.Source.Shards {
		return ""
	}
	shards := "shards"
	if n == 1 {
		shards = "shard"
	}
	return fmt.Sprintf("source.shards is %d but stream %s exists with %d open %s: the job reads the %d it has (shards applies only when the job creates the stream); to change that, runnel streams resize %s --shards %d",
		spec.Source.Shards, name, n, shards, n, name, spec.Source.Shards)
}
