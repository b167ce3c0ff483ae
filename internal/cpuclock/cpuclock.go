// Package cpuclock reads the CPU time the process has used, the figure
// benchmarks report beside wall-clock rates (it holds up when the machine
// is shared) and the JavaScript watchdog budgets calls by.
package cpuclock

import "time"

// Unknown is what Process returns where the platform does not report CPU
// time.
const Unknown time.Duration = -1

// Process returns the user+system CPU time the process has used so far, or
// Unknown.
func Process() time.Duration { return process() }

// Since returns the CPU time used since start (a value Process returned),
// or 0 when either reading is Unknown.
func Since(start time.Duration) time.Duration {
	now := Process()
	if now < 0 || start < 0 {
		return 0
	}
	return now - start
}
