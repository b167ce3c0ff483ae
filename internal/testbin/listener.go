package testbin

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listens says whether process pid holds the listening TCP socket of addr
// (host:port), by the socket inodes of /proc/net/tcp and the process's
// file descriptors. A port found free a moment before may be taken by
// another test's server in between: a health check that this one answers
// is not one of pid's. Where /proc cannot tell (another system), it says
// yes.
func listens(pid int, addr string) bool {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return true
	}
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if n, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(n) == port {
				inodes[fs[9]] = true
			}
		}
		f.Close()
	}
	if len(inodes) == 0 {
		_, err := os.Stat("/proc/net/tcp")
		return err != nil // no listener at all, unless /proc is not there
	}
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return true
	}
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true
		}
	}
	return false
}
