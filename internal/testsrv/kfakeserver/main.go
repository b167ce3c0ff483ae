// Command kfakeserver runs franz-go's kfake, a Kafka wire-protocol broker
// with consumer groups and transactions, as its own process, so tests can
// kill it with SIGKILL and start it again on the same data directory. It
// prints "listening ADDR[,ADDR...]" on stdout once it accepts connections.
// It times out the group members kfake forgets to (package kfakegroup).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/runnel-dev/runnel/internal/testsrv/kfakegroup"
)

func main() {
	port := flag.Int("port", 0, "port of the first broker (0: any free port)")
	brokers := flag.Int("brokers", 1, "number of brokers")
	data := flag.String("data", "", "directory to persist the cluster in (empty: memory only)")
	topics := flag.String("topics", "", "comma-separated topics to create")
	partitions := flag.Int("partitions", 1, "partitions of each topic in --topics")
	flag.Parse()
	ports := make([]int, *brokers)
	ports[0] = *port
	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.Ports(ports...)}
	if *data != "" {
		opts = append(opts, kfake.DataDir(*data), kfake.SyncWrites())
	}
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
	stop, err := kfakegroup.Start(c, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
	fmt.Println("listening", strings.Join(c.ListenAddrs(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	stop()
	c.Close()
}
