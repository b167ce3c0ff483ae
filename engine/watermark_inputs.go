package engine

// InputMarks is the watermark of a task fed by several inputs, by the rules
// of the runtime's own tasks (see tracker), for a runtime outside this
// package: package cluster's tasks, fed by the tasks of the stage before
// them through a repartition topic. Its state can be saved and restored
// (Marks, SetMark), so a moved task continues where it was.
type InputMarks struct{ t *tracker }

// InputMark is what InputMarks knows of one input.
type InputMark struct {
	WM   int64 `json:"wm"`
	Idle bool  `json:"idle,omitempty"`
}

// NewInputMarks expects the given inputs: each holds the watermark back
// until it sends one.
func NewInputMarks(inputs []string) *InputMarks { return &InputMarks{newTracker(inputs)} }

// Update records input id's watermark and marks it active; an input not
// expected is added.
func (m *InputMarks) Update(id string, wm int64) { m.t.update(id, wm) }

// Idle leaves input id out until it sends a watermark again.
func (m *InputMarks) Idle(id string) { m.t.idle(id) }

// Wake makes idle input id active again at its watermark: it holds the
// watermark back until it sends a new one or is idle again.
func (m *InputMarks) Wake(id string) {
	if in, ok := m.t.inputs[id]; ok && in.state == inputIdle {
		in.state = inputActive
	}
}

// Current returns the watermark: the minimum over active inputs; the
// largest of the idle ones when all are idle; never lower than before.
func (m *InputMarks) Current() int64 { return m.t.current() }

// Marks returns each input's mark and the last watermark returned.
func (m *InputMarks) Marks() (map[string]InputMark, int64) {
	out := make(map[string]InputMark, len(m.t.inputs))
	for id, in := range m.t.inputs {
		out[id] = InputMark{WM: in.wm, Idle: in.state == inputIdle}
	}
	return out, m.t.last
}

// SetMark restores input id's mark, and the watermark's floor last.
func (m *InputMarks) SetMark(id string, mark InputMark, last int64) {
	in, ok := m.t.inputs[id]
	if !ok {
		in = &trackedInput{}
		m.t.inputs[id] = in
	}
	in.wm, in.state = mark.WM, inputActive
	if mark.Idle {
		in.state = inputIdle
	}
	m.t.last = max(m.t.last, last)
}
