package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/runnel-dev/runnel/internal/confine"
	"github.com/runnel-dev/runnel/jobs"
)

// openFilesRoot opens the directory server jobs' files live beneath
// (--files-root; "" is DATA/files), with the data directory protected. A
// files root inside the data directory must be DATA/files or beneath it,
// so that it cannot hold the server's own streams, jobs or keys.
func openFilesRoot(dir, data string) (*confine.Root, error) {
	def := filepath.Join(data, jobs.FilesDirName)
	if dir == "" {
		dir = def
	}
	absData, err := filepath.Abs(data)
	if err != nil {
		return nil, err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	absDef := filepath.Join(absData, jobs.FilesDirName)
	if inside(absDir, absData) && absDir != absData && !inside(absDir, absDef) {
		return nil, fmt.Errorf("%w: --files-root %s is inside the data directory; use %s or a directory beneath it, or one outside %s",
			errUsage, dir, def, data)
	}
	return confine.Open(dir, data)
}

func inside(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}
