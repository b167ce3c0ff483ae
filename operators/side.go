package operators

// SideOutputs is implemented by operators that emit records besides their
// main output: dead letters of a JS operator (on_error: dead_letter) or the
// late records of a window. The runtime asserts it once when it builds the
// graph and wires each name it knows (to a stream or a `late:` sink) before
// the first Process call. Records for a name that was never wired are
// counted by the operator and dropped.
type SideOutputs interface {
	// SideOutputNames lists the names this operator may emit to.
	SideOutputNames() []string
	// SetSideOutput wires name to out. The same rules as for the main
	// Emitter apply: out is only called during Process or OnWatermark.
	SetSideOutput(name string, out Emitter)
}

// LateOutput is the side output name of a window's late records.
const LateOutput = "late"

// DeadLetterOutput returns the side output name of the dead letters of the
// operator with the given id.
func DeadLetterOutput(operatorID string) string { return "dead_letter:" + operatorID }
