package engine

import "math"

// Watermark bounds. NoWatermark is "nothing seen yet"; EndOfTime is the
// watermark of an input that ended (a bounded source or a finished task).
const (
	NoWatermark int64 = math.MinInt64
	EndOfTime   int64 = math.MaxInt64
)

// shardWatermark is maxEventTime − bound without overflow.
func shardWatermark(maxEventTime int64, bound int64) int64 {
	if maxEventTime == NoWatermark {
		return NoWatermark
	}
	if maxEventTime == EndOfTime {
		return EndOfTime
	}
	if maxEventTime < NoWatermark+bound {
		return NoWatermark
	}
	return maxEventTime - bound
}

type inputState uint8

const (
	inputActive inputState = iota
	inputIdle
	inputEnded
)

type trackedInput struct {
	wm    int64
	state inputState
}

// tracker computes a task's watermark from the watermarks its inputs send
// in-band: the minimum over active inputs. Inputs are registered up front
// (initial shards, upstream keyed tasks) or by an in-band open message
// that a parent shard sends for its children before its own end, so a
// child holds the watermark from before its parent lets go of it.
//
// Rules: an ended input counts as +inf; an idle input (a shard that
// returned nothing for its idle timeout) is left out; when every input
// left is idle, the watermark is the largest of their watermarks — the
// inputs are all caught up, so waiting longer cannot help; when all ended,
// it is EndOfTime. The result never goes backwards.
type tracker struct {
	inputs map[string]*trackedInput
	last   int64
}

func newTracker(initial []string) *tracker {
	t := &tracker{inputs: make(map[string]*trackedInput, len(initial)), last: NoWatermark}
	for _, id := range initial {
		t.inputs[id] = &trackedInput{wm: NoWatermark}
	}
	return t
}

// open registers an input that will start later, holding the watermark at
// wm; opening an already known, not yet active input lowers its mark.
func (t *tracker) open(id string, wm int64) {
	if in, ok := t.inputs[id]; ok {
		if in.state == inputActive && wm < in.wm {
			in.wm = wm
		}
		return
	}
	t.inputs[id] = &trackedInput{wm: wm}
}

// update records input id's watermark and marks it active.
func (t *tracker) update(id string, wm int64) {
	in, ok := t.inputs[id]
	if !ok {
		in = &trackedInput{wm: wm}
		t.inputs[id] = in
	}
	if in.state == inputEnded {
		return
	}
	in.state = inputActive
	if wm > in.wm {
		in.wm = wm
	}
}

func (t *tracker) idle(id string) {
	if in, ok := t.inputs[id]; ok && in.state == inputActive {
		in.state = inputIdle
	}
}

func (t *tracker) end(id string) {
	in, ok := t.inputs[id]
	if !ok {
		in = &trackedInput{}
		t.inputs[id] = in
	}
	in.state = inputEnded
	in.wm = EndOfTime
}

// current returns the watermark by the rules above.
func (t *tracker) current() int64 {
	minActive, maxIdle := EndOfTime, NoWatermark
	active, idle := 0, 0
	for _, in := range t.inputs {
		switch in.state {
		case inputActive:
			active++
			minActive = min(minActive, in.wm)
		case inputIdle:
			idle++
			maxIdle = max(maxIdle, in.wm)
		}
	}
	wm := EndOfTime
	switch {
	case active > 0:
		wm = minActive
	case idle > 0:
		wm = maxIdle
	}
	if wm > t.last {
		t.last = wm
	}
	return t.last
}
