// Package anomaly is Runnel's streaming anomaly detection: online detectors
// that see each point of a series once, in order, with bounded memory, and
// give it a score in [0, 1], a verdict, an expected range and an
// explanation. The job file's detect operator (package operators/detect)
// keeps one Detector per key;
// `runnel detect` runs the same code over a CSV.
//
// # Using it
//
//	d, err := anomaly.New(anomaly.Config{Method: "auto", Fields: []string{"views"}})
//	...
//	r := d.Score(ts, []float64{views}) // r.Score, r.IsAnomaly, r.Expected, r.Explanation
//	state, err := d.MarshalBinary()    // for a checkpoint
//	d, err = anomaly.Restore(cfg, state)
//
// A Detector is not safe for concurrent use. It is deterministic: the same
// Config (including Seed) and the same points give the same results, also
// across a MarshalBinary/Restore round trip.
//
// # Methods
//
//   - novelty: how far the value is from the nearest value in the last
//     History points, as a fraction of the range seen so far and in units
//     of the series' noise; on a field that looks like white noise around
//     a level, also in units of its distance from the recent median (so a
//     new record a few deviations out is not an alarm). Catches spikes
//     beyond the usual values, level shifts and variance increases; blind
//     to changes that stay inside values already seen (a missing seasonal
//     peak).
//   - knn: how far the recent shape (a shingle of ShingleSize segment
//     means, each of Segment points) is from its nearest neighbour among
//     the last History shapes, against the range and against the series'
//     own history of such distances. Catches broken seasonality and shifts.
//   - rcf: a robust random cut forest (Guha et al. 2016) over shingles, with
//     its collusive displacement turned into a standard score. The classic
//     streaming detector (Kinesis Data Analytics' RANDOM_CUT_FOREST); the
//     slowest method, and noisier than the ensemble.
//   - ensemble (what auto means): the most severe of novelty and knn,
//     divided by the series' own alarm level once its ordinary points
//     keep scoring near the alarm (Tuning.Level, Tuning.LevelQuantile),
//     so one threshold means about the same on every series.
//   - artime: adaptive resonance over windowed features of the series
//     downsampled (ARTime, with its published constants): after a
//     probation of Probation points, a window that resonates with no
//     learned category scores by how far below the network's vigilance it
//     fell. Memory is bounded by a cap on categories.
//
// Every method's severity (artime's only if Suppress is set: it masks
// repeats itself) is suppressed for Suppress points after a point at least
// as severe, so one incident is reported once; only a worse point reports
// again. docs/anomaly.md lists each method's NAB scores.
//
// # Explanations
//
// Expected, Low and High come from a rolling median and MAD of each field
// over the last 64 points; Explanation names the field whose robust
// z-score against that baseline is largest, whether it is high or low, and
// that z-score (Z: how unusual). Contributions gives every field's signed
// share.
package anomaly
