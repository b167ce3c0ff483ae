//go:build !linux

package confine

import "testing"

func eachResolver(t *testing.T, body func(t *testing.T)) { t.Run("portable", body) }
