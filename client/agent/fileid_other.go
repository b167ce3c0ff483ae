//go:build !unix

package agent

import "os"

// fileID reports no identity: the agent follows files by inode, which it
// has only on unix; scanning then fails with an error naming the file.
func fileID(os.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }
