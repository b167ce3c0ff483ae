package cluster

import (
	"encoding/json"
	"math"
)

// Watermark bounds, as in the engine: NoWatermark is "nothing seen yet".
const (
	NoWatermark int64 = math.MinInt64
	EndOfTime   int64 = math.MaxInt64
)

// Mark is what a task knows of one producer task: the latest watermark it
// sent, and whether it said it is idle since.
type Mark struct {
	WM   int64 `json:"wm"`
	Idle bool  `json:"idle,omitempty"`
}

// Watermarks is the watermark of a task that reads a repartition topic:
// the minimum over the producer tasks it expects of the latest watermark
// each wrote into its partition. The rules are those of a server's tasks:
// a producer not heard from yet holds it back (at NoWatermark); an idle
// producer is left out until it sends a watermark again; when every
// producer is idle, it is the largest of their watermarks; it never goes
// backwards. A task keeps it in its changelog (MarshalJSON), so a restored
// task continues where the committed one was.
type Watermarks struct {
	Producers map[string]*Mark `json:"producers"`
	Last      int64            `json:"last"`
}

// NewWatermarks expects the given producers.
func NewWatermarks(producers []string) *Watermarks {
	w := &Watermarks{Producers: make(map[string]*Mark, len(producers)), Last: NoWatermark}
	for _, p := range producers {
		w.Producers[p] = &Mark{WM: NoWatermark}
	}
	return w
}

// Update records producer's watermark wm and marks it active. A producer
// not expected is added (the source gained a partition).
func (w *Watermarks) Update(producer string, wm int64) {
	m, ok := w.Producers[producer]
	if !ok {
		m = &Mark{WM: wm}
		w.Producers[producer] = m
	}
	m.Idle = false
	m.WM = max(m.WM, wm)
}

// Idle marks producer idle: it saw no record for its idle timeout.
func (w *Watermarks) Idle(producer string) {
	if m, ok := w.Producers[producer]; ok {
		m.Idle = true
	}
}

// Current returns the watermark by the rules above.
func (w *Watermarks) Current() int64 {
	minActive, maxIdle := EndOfTime, NoWatermark
	active, idle := 0, 0
	for _, m := range w.Producers {
		if m.Idle {
			idle++
			maxIdle = max(maxIdle, m.WM)
		} else {
			active++
			minActive = min(minActive, m.WM)
		}
	}
	wm := NoWatermark
	switch {
	case active > 0:
		wm = minActive
	case idle > 0:
		wm = maxIdle
	}
	w.Last = max(w.Last, wm)
	return w.Last
}

// Restore replaces w by the state encoded by MarshalJSON, keeping the
// producers w expects that the state does not know.
func (w *Watermarks) Restore(b []byte) error {
	var r Watermarks
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	for p, m := range r.Producers {
		if m != nil {
			w.Producers[p] = m
		}
	}
	w.Last = max(w.Last, r.Last)
	return nil
}
