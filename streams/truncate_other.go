//go:build !unix

package streams

import "errors"

// prefillSupported: no truncation by descriptor, so prefill is off by
// default.
const prefillSupported = false

// truncateFd is not available here; Open turns prefill off by default.
func truncateFd(fd uintptr, size int64) error {
	return errors.New("truncating a file by descriptor is not supported on this system")
}
