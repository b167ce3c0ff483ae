package streams

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/runnel-dev/runnel/internal/cpuclock"
)

// BenchmarkWriteSyncModes is the process CPU of making one commit group
// durable, with four files written and synced at once as four shards'
// writers do, in three ways: pwrite then fdatasync (what the log does),
// one pwritev2 with RWF_DSYNC, and a pwrite to a file opened O_DSYNC. The
// files grow, as an active segment without prefill does. An op is one
// round: one group in each file; cpu-us/group is the process CPU of the
// round over the files.
func BenchmarkWriteSyncModes(b *testing.B) {
	const files = 4
	for _, size := range []int{16 << 10, 56 << 10, 224 << 10} {
		for _, mode := range []string{"pwrite+fdatasync", "pwritev2-dsync", "o_dsync"} {
			b.Run(fmt.Sprintf("%s/%dKiB", mode, size>>10), func(b *testing.B) {
				dir := b.TempDir()
				flags := os.O_CREATE | os.O_RDWR
				if mode == "o_dsync" {
					flags |= syscall.O_DSYNC
				}
				var fs []*os.File
				for i := range files {
					f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("seg%d", i)), flags, 0o644)
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					fs = append(fs, f)
				}
				buf := bytes.Repeat([]byte{0xa5}, size)
				b.SetBytes(int64(files * size))
				b.ResetTimer()
				cpu := cpuclock.Process()
				var wg sync.WaitGroup
				errs := make([]error, files)
				for j, f := range fs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs[j] = writeSyncLoop(f, buf, b.N, mode)
					}()
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuclock.Since(cpu).Nanoseconds())/1e3/float64(b.N*files), "cpu-us/group")
			})
		}
	}
}

func writeSyncLoop(f *os.File, buf []byte, n int, mode string) error {
	fd := int(f.Fd())
	for i := range n {
		off := int64(i) * int64(len(buf))
		var err error
		switch mode {
		case "pwritev2-dsync":
			_, err = unix.Pwritev2(fd, [][]byte{buf}, off, unix.RWF_DSYNC)
		default:
			if _, err = f.WriteAt(buf, off); err == nil && mode == "pwrite+fdatasync" {
				err = datasync(f)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
