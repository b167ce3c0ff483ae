package confine

import "testing"

// eachResolver runs body with openat2 and again with the portable
// resolver.
func eachResolver(t *testing.T, body func(t *testing.T)) {
	t.Run("openat2", body)
	t.Run("portable", func(t *testing.T) {
		noOpenat2.Store(true)
		defer noOpenat2.Store(false)
		body(t)
	})
}
