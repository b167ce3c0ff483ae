package kfakegroup

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// A static member restarts, and its new life dies while its join waits
// for the group to rebalance: the group must not keep it. kfake alone
// keeps such a member, when its dead connection loses the race for the
// join's answer (about half the time), in the Stable group for good,
// holding partitions nobody reads; with the expirer, it leaves within
// twice its session timeout. Four groups play this at once, so that
// without the expirer at least one keeps its dead member but in one run
// of 16.
func TestDeadJoinerLeavesTheGroup(t *testing.T) {
	const groups = 4
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(4, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := Start(c, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	var mu sync.Mutex
	arrived := map[string]chan struct{}{} // group → closed when the next life's join came
	c.ControlKey(int16(kmsg.JoinGroup), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if r := kreq.(*kmsg.JoinGroupRequest); r.InstanceID != nil && *r.InstanceID == "next" && r.MemberID == "" {
			mu.Lock()
			if ch := arrived[r.Group]; ch != nil {
				close(ch)
				delete(arrived, r.Group)
			}
			mu.Unlock()
		}
		return nil, nil, false
	})
	var wg sync.WaitGroup
	for g := range groups {
		group := fmt.Sprint("g", g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The live member joins first and stays the leader, which
			// syncs the group while the other's next life is dead.
			live := member(ctx, t, c, group, "live")
			defer live.Close()
			waitGroup(t, c, group, func(i *kfake.GroupInfo) bool { return i.State == "Stable" && i.NumAssigned() == 4 })
			first := member(ctx, t, c, group, "next")
			waitGroup(t, c, group, func(i *kfake.GroupInfo) bool {
				return i.State == "Stable" && len(i.Members) == 2 && i.Members[0].NumAssigned() == 2
			})
			first.Close() // a static member does not leave: its partitions wait for its next life
			next, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
			if err != nil {
				t.Error(err)
				return
			}
			ch := make(chan struct{})
			mu.Lock()
			arrived[group] = ch
			mu.Unlock()
			go next.Request(ctx, staticJoin(group, "next", "t"))
			<-ch
			next.Close() // the next life dies while its join waits
			began := time.Now()
			if info := waitGroup(t, c, group, func(i *kfake.GroupInfo) bool { return len(i.Members) == 1 && i.State == "Stable" }); len(info.Members) == 1 {
				t.Logf("%s: the dead member left within %s", group, time.Since(began))
			}
		}()
	}
	wg.Wait()
}

// member is a static member of group, reading topic t.
func member(ctx context.Context, t *testing.T, c *kfake.Cluster, group, id string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup(group), kgo.InstanceID(id),
		kgo.ConsumeTopics("t"), kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.SessionTimeout(6*time.Second),
		kgo.RebalanceTimeout(6*time.Second), kgo.HeartbeatInterval(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil && !cl.PollFetches(ctx).IsClientClosed() {
		}
	}()
	return cl
}

// staticJoin is a consumer's first JoinGroup with a group instance id.
func staticJoin(group, instance, topic string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = group, 6000, 6000, "consumer"
	req.InstanceID = kmsg.StringPtr(instance)
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topic}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "cooperative-sticky", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req
}

// waitGroup waits, for at most a minute, until group satisfies ok; it
// fails the test if it does not.
func waitGroup(t *testing.T, c *kfake.Cluster, group string, ok func(*kfake.GroupInfo) bool) *kfake.GroupInfo {
	var i *kfake.GroupInfo
	if !testutil.Within(time.Minute, func() bool { i = c.GroupInfo(group); return i != nil && ok(i) }) {
		t.Errorf("group %s after a minute: %+v", group, i)
	}
	return i
}
