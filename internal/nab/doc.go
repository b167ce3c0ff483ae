// Package nab implements the scoring method of the Numenta Anomaly Benchmark
// (Lavin & Ahmad 2015; NAB v1.1 "sweeper"), and reads its corpus format:
// `timestamp,value` CSV files and a labels file of anomaly windows.
//
// A detector gives every row of every file a score in [0, 1]. Score turns
// those scores into NAB's normalised score for one profile:
//
//   - rows in the probationary period (the first 15% of a file, at most 750
//     rows) are ignored;
//   - inside an anomaly window only the earliest detection counts, weighted
//     by the scaled sigmoid of its relative position (earlier is worth more,
//     the window's first row is worth the full true-positive weight);
//   - a detection outside every window is a false positive, weighted by the
//     scaled sigmoid of its distance past the preceding window (or -1 when
//     no window precedes it) times the false-positive weight;
//   - a window without a detection costs the false-negative weight;
//   - one threshold, chosen to maximise the total over the whole corpus,
//     turns scores into detections (score >= threshold);
//   - the total is normalised so that the null detector (never detects)
//     scores 0 and a perfect detector 100.
//
// The package knows nothing about detectors; callers pass scores in.
package nab
