package testsrv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv/kfakegroup"
)

// Kafka starts an in-process kfake cluster with the given topics (each
// with partitions partitions) and returns its seed brokers. It stops when
// the test ends.
func Kafka(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	return KafkaWith(t, kfake.SeedTopics(partitions, topics...))
}

// KafkaWith starts an in-process kfake cluster with extra options (SASL
// users, say) on a free loopback port. Like the kfakeserver process, it
// times out the group members kfake forgets to (package kfakegroup).
func KafkaWith(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.Ports(0)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	stop, err := kfakegroup.Start(c, testLog{t})
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(stop)
	return c.ListenAddrs()
}

// ReadCommitted returns a client that consumes topic from its start with
// read_committed isolation: it sees what transactions committed, never
// what they aborted or have not committed yet. The caller closes it.
func ReadCommitted(t testing.TB, topic string, brokers ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

var kfakeBin = testbin.Binary{Pkg: "github.com/runnel-dev/runnel/internal/testsrv/kfakeserver"}

// KafkaProcess is kfake run as its own process, which a test may kill
// with SIGKILL and start again on the same data directory and port.
type KafkaProcess struct {
	process
	t    testing.TB
	Addr string
	args []string
}

// StartKafkaProcess builds cmd kfakeserver once per test binary and starts
// it with its state persisted in a temporary directory.
func StartKafkaProcess(t testing.TB, partitions int, topics ...string) *KafkaProcess {
	t.Helper()
	p := &KafkaProcess{t: t, args: []string{"--data", t.TempDir(), "--partitions", fmt.Sprint(partitions)}}
	if len(topics) > 0 {
		p.args = append(p.args, "--topics", strings.Join(topics, ","))
	}
	p.Start()
	t.Cleanup(p.Kill)
	return p
}

// Start starts the process (again, on the port of its first start).
func (p *KafkaProcess) Start() {
	p.t.Helper()
	args := p.args
	if p.Addr != "" {
		args = append(args[:len(args):len(args)], "--port", p.Addr[strings.LastIndexByte(p.Addr, ':')+1:])
	}
	p.cmd = exec.Command(kfakeBin.Path(p.t), args...)
	p.cmd.Stderr = os.Stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() {
		}
	}()
	select {
	case l, ok := <-line:
		addrs, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			p.Kill()
			p.t.Fatalf("kfakeserver did not start: %q", l)
		}
		p.Addr = strings.Split(addrs, ",")[0]
	case <-time.After(30 * time.Second):
		p.Kill()
		p.t.Fatal("kfakeserver did not print its address within 30s")
	}
}

// testLog writes each line to the test's log.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
