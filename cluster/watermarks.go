package cluster

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/runnel-dev/runnel/engine"
)

// Watermark bounds, as in the engine: NoWatermark is "nothing seen yet".
const (
	NoWatermark int64 = math.MinInt64
	EndOfTime   int64 = math.MaxInt64
)

// FinalGeneration marks an idle record that holds in every generation: a
// finished Kinesis shard's, which no worker owns any more.
const FinalGeneration int32 = math.MaxInt32

// Watermarks is the watermark of a task that reads a repartition topic:
// the minimum over the producer tasks it expects of the latest watermark
// each wrote into its partition, by the rules of a server's tasks
// (engine.InputMarks): a producer not heard from yet holds it back; an
// idle producer is left out until it sends a watermark again; when every
// producer is idle, it is the largest of their watermarks; it never goes
// backwards. A task keeps it in its changelog (MarshalJSON, Restore), so a
// restored task continues where the committed one was.
//
// An idle mark holds only in the group generation it was written in: it
// says that the producer's owner had read all there was, and a rebalance
// or a restart of the job may give the partition to an owner that has not
// read what came since. A producer whose idle mark is older than the
// newest generation known (Generation) holds the watermark back at its
// last watermark until it speaks again: its owner announces it idle again
// in the new generation, or its records come.
type Watermarks struct {
	m       *engine.InputMarks
	idleGen map[string]int32 // the generation of each idle producer's mark
	gen     int32            // the newest generation known
}

// NewWatermarks expects the given producers.
func NewWatermarks(producers []string) *Watermarks {
	return &Watermarks{m: engine.NewInputMarks(producers), idleGen: map[string]int32{}}
}

// Update records producer's watermark wm and marks it active. A producer
// not expected is added (the source gained a partition).
func (w *Watermarks) Update(producer string, wm int64) {
	w.m.Update(producer, wm)
	delete(w.idleGen, producer)
}

// Idle marks producer idle by a mark written in group generation gen
// (FinalGeneration: for good). A mark of a generation older than the
// newest known does not count.
func (w *Watermarks) Idle(producer string, gen int32) {
	if gen == FinalGeneration {
		w.m.Idle(producer)
		delete(w.idleGen, producer)
		return
	}
	w.Generation(gen)
	if gen < w.gen {
		return
	}
	w.m.Idle(producer)
	w.idleGen[producer] = gen
}

// Generation notes that the group has reached generation gen: idle marks
// of earlier generations stop counting (their producers hold the
// watermark back at their last watermark). It reports whether any did.
func (w *Watermarks) Generation(gen int32) (woke bool) {
	if gen <= w.gen {
		return false
	}
	w.gen = gen
	for p, g := range w.idleGen {
		if g < gen {
			w.m.Wake(p)
			delete(w.idleGen, p)
			woke = true
		}
	}
	return woke
}

// Current returns the watermark by the rules above.
func (w *Watermarks) Current() int64 { return w.m.Current() }

type savedMarks struct {
	Producers map[string]engine.InputMark `json:"producers"`
	Last      int64                       `json:"last"`
	// The generation of each idle producer's mark; Final names those idle
	// for good. An idle producer in neither (marks saved before
	// generations were kept) counts as idle in generation 0.
	IdleGenerations map[string]int32 `json:"idle_generations,omitempty"`
	Generation      int32            `json:"generation,omitempty"`
	Final           []string         `json:"final,omitempty"`
}

// MarshalJSON encodes the producers' marks and the last watermark.
func (w *Watermarks) MarshalJSON() ([]byte, error) {
	marks, last := w.m.Marks()
	s := savedMarks{Producers: marks, Last: last, Generation: w.gen}
	for p, m := range marks {
		if !m.Idle {
			continue
		}
		if g, ok := w.idleGen[p]; ok {
			if s.IdleGenerations == nil {
				s.IdleGenerations = map[string]int32{}
			}
			s.IdleGenerations[p] = g
		} else {
			s.Final = append(s.Final, p)
		}
	}
	slices.Sort(s.Final) // the same marks, the same bytes
	return json.Marshal(s)
}

// Restore sets the marks encoded by MarshalJSON, keeping the producers w
// expects that they do not name.
func (w *Watermarks) Restore(b []byte) error {
	var s savedMarks
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	final := map[string]bool{}
	for _, p := range s.Final {
		final[p] = true
	}
	for p, m := range s.Producers {
		w.m.SetMark(p, m, s.Last)
		delete(w.idleGen, p)
		if m.Idle && !final[p] {
			w.idleGen[p] = s.IdleGenerations[p]
		}
	}
	w.gen = max(w.gen, s.Generation)
	return nil
}

// Open announces producer at watermark wm: it holds the watermark back at
// wm until it writes its own. A producer known already is left as it is.
func (w *Watermarks) Open(producer string, wm int64) {
	if marks, _ := w.m.Marks(); marks != nil {
		if _, ok := marks[producer]; ok {
			return
		}
	}
	w.m.SetMark(producer, engine.InputMark{WM: wm}, NoWatermark)
}
