package jobs

import (
	"slices"
	"testing"
)

// Spec.Streams lists every Runnel stream a job reads or writes, the
// streams failed records go to included, each once.
func TestSpecStreams(t *testing.T) {
	spec, err := Parse([]byte(`name: s
source: {stream: in}
operators:
  - id: f
    function:
      handler: "(batch) => ({})"
      on_failure: failed
  - {id: m, input: f, map: "r => r", on_error: {dead_letter: dl}}
  - {id: m2, input: m, map: "r => r", on_error: {dead_letter: dl}}
sinks:
  - {id: a, input: f, stream: {name: out}}
  - {id: b, input: m2, log: {}}
  - {id: c, input: m2, stream: {name: out2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := spec.Streams()
	slices.Sort(got)
	if want := []string{"dl", "failed", "in", "out", "out2"}; !slices.Equal(got, want) {
		t.Fatalf("Streams() = %v, want %v", got, want)
	}
}
