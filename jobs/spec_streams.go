package jobs

// Streams lists the Runnel streams the job reads and writes: its source
// stream, its stream sinks, and the streams its operators send failed
// records to (an on_error dead_letter stream, a function's on_failure
// stream), each once. The server authorises a job by them.
func (spec *Spec) Streams() []string {
	var out []string
	add := func(name string) {
		if name == "" {
			return
		}
		for _, n := range out {
			if n == name {
				return
			}
		}
		out = append(out, name)
	}
	add(spec.Source.stream())
	for i := range spec.Operators {
		op := &spec.Operators[i]
		add(op.OnError.DeadLetter)
		add(deadLetterStream(op))
	}
	for i := range spec.Sinks {
		sk := &spec.Sinks[i]
		if k := lookupSink(sk.Kind()); k != nil && k.Stream != nil {
			name, _ := k.Stream(sk, "")
			add(name)
		}
	}
	return out
}
