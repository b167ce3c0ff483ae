package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// demoTimeScaleEnv names a development aid for tests: RUNNEL_DEMO_TIMESCALE=N
// runs the demo job N times faster (N times the rate, windows and the
// flash-sale schedule N times shorter), so that a test sees the first
// flash sale within a minute or two instead of five. Not for users.
const demoTimeScaleEnv = "RUNNEL_DEMO_TIMESCALE"

// demoJobFile returns the demo job file, sped up by $RUNNEL_DEMO_TIMESCALE.
func demoJobFile() ([]byte, error) {
	v := os.Getenv(demoTimeScaleEnv)
	if v == "" {
		return demoJob, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 50 {
		return nil, fmt.Errorf("%s=%q: want an integer from 1 to 50", demoTimeScaleEnv, v)
	}
	job := demoJob
	for _, r := range []struct{ old, new string }{
		{"rate: 400,", fmt.Sprintf("rate: %d,", 400*n)},
		{"tumbling: 5s", "tumbling: " + (5 * time.Second / time.Duration(n)).String()},
		{"allowed_lateness: 5s", "allowed_lateness: " + (5 * time.Second / time.Duration(n)).String()},
		{"const timeScale = 1", fmt.Sprintf("const timeScale = %d", n)},
	} {
		if !bytes.Contains(job, []byte(r.old)) {
			return nil, fmt.Errorf("%s: demo.yaml has no %q to scale", demoTimeScaleEnv, r.old)
		}
		job = bytes.Replace(job, []byte(r.old), []byte(r.new), 1)
	}
	return job, nil
}
