//go:build !unix

package cpuclock

import "time"

func process() time.Duration { return Unknown }
