package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

func init() {
	register("groups", "create, list, describe and delete consumer groups", runGroups)
}

const groupsHelp = `Usage: runnel groups <subcommand> [flags]

Subcommands:
  create STREAM GROUP [--lease-duration D] [--start trim_horizon|latest]   create a group
  list STREAM                                  list a stream's consumer groups
  describe STREAM GROUP                        show a group's leases and workers (--json for raw)
  delete STREAM GROUP                          delete a group and its checkpoints (admin)

Workers join with 'runnel consume STREAM --group GROUP' or the client/consumer package.
Every subcommand takes --server URL (default http://127.0.0.1:7070, env RUNNEL_SERVER) and,
for a server with auth on, --token TOKEN (env RUNNEL_TOKEN); each subcommand's
--help lists its flags.`

func runGroups(args []string) error {
	return runSubcommand(args, groupsHelp, map[string]func([]string) error{
		"create": groupsCreate, "list": groupsList, "describe": groupsDescribe, "delete": groupsDelete,
	})
}

func groupsPath(stream string) string {
	return "/api/v1/streams/" + url.PathEscape(stream) + "/consumer-groups"
}

func groupsCreate(args []string) error {
	fs := newFlags("groups create", "groups create STREAM GROUP [--lease-duration D] [--start trim_horizon|latest]",
		"Creates a consumer group on STREAM. 'runnel consume' also creates its group when missing.")
	server := addServerFlag(fs)
	lease := fs.Duration("lease-duration", 10*time.Second, "how long a worker keeps its leases without a heartbeat (200ms to 1h)")
	start := fs.String("start", "trim_horizon", "where a shard without a checkpoint is read from: trim_horizon or latest")
	pos, err := parseInterspersed(fs, args, 2, "STREAM GROUP")
	if err != nil {
		return err
	}
	body := map[string]any{"name": pos[1], "lease_duration_ms": lease.Milliseconds(), "start": *start}
	if err := newClient(*server).do("POST", groupsPath(pos[0]), body, nil); err != nil {
		return err
	}
	fmt.Printf("created consumer group %s on stream %s\n", pos[1], pos[0])
	return nil
}

type groupView struct {
	Name            string   `json:"name"`
	LeaseDurationMS int64    `json:"lease_duration_ms"`
	Start           string   `json:"start"`
	Created         string   `json:"created"`
	Workers         []string `json:"workers"`
	StaleRefused    int64    `json:"stale_refused"`
	Leases          []struct {
		Shard    string `json:"shard"`
		Owner    string `json:"owner"`
		Epoch    uint64 `json:"epoch"`
		Expires  string `json:"expires"`
		Seq      string `json:"sequence_number"`
		Sub      uint64 `json:"sub_sequence_number"`
		Finished bool   `json:"finished"`
	} `json:"leases"`
}

func groupsList(args []string) error {
	fs := newFlags("groups list", "groups list STREAM", "Lists the consumer groups of STREAM.")
	server := addServerFlag(fs)
	pos, err := parseInterspersed(fs, args, 1, "STREAM")
	if err != nil {
		return err
	}
	var out struct {
		Groups []groupView `json:"consumer_groups"`
	}
	if err := newClient(*server).do("GET", groupsPath(pos[0]), nil, &out); err != nil {
		return err
	}
	if len(out.Groups) == 0 {
		fmt.Printf("stream %s has no consumer groups: create one with 'runnel groups create %s GROUP'\n", pos[0], pos[0])
		return nil
	}
	tw := newTable("NAME\tLEASE\tSTART\tCREATED")
	for _, g := range out.Groups {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", g.Name, time.Duration(g.LeaseDurationMS)*time.Millisecond, g.Start, g.Created)
	}
	return tw.Flush()
}

func groupsDescribe(args []string) error {
	fs := newFlags("groups describe", "groups describe STREAM GROUP [--json]", "Shows a consumer group: its live workers and, per shard, the lease's owner, epoch and checkpoint.")
	server := addServerFlag(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	pos, err := parseInterspersed(fs, args, 2, "STREAM GROUP")
	if err != nil {
		return err
	}
	var g groupView
	if printed, err := getOrPrint(*server, groupsPath(pos[0])+"/"+url.PathEscape(pos[1]), *asJSON, &g); err != nil || printed {
		return err
	}
	workers := "none"
	if len(g.Workers) > 0 {
		workers = strings.Join(g.Workers, ", ")
	}
	fmt.Printf("group %s on %s: lease %v, start %s, %d stale checkpoints refused, live workers: %s\n",
		g.Name, pos[0], time.Duration(g.LeaseDurationMS)*time.Millisecond, g.Start, g.StaleRefused, workers)
	tw := newTable("SHARD\tOWNER\tEPOCH\tEXPIRES\tCHECKPOINT")
	for _, l := range g.Leases {
		cp := "-"
		switch {
		case l.Finished:
			cp = "SHARD_END"
		case l.Seq != "":
			cp = fmt.Sprintf("%s/%d", l.Seq, l.Sub)
		}
		owner, exp := l.Owner, l.Expires
		if owner == "" {
			owner, exp = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", l.Shard, owner, l.Epoch, exp, cp)
	}
	return tw.Flush()
}

func groupsDelete(args []string) error {
	fs := newFlags("groups delete", "groups delete STREAM GROUP", "Deletes a consumer group and its checkpoints (needs an admin token).")
	server := addServerFlag(fs)
	pos, err := parseInterspersed(fs, args, 2, "STREAM GROUP")
	if err != nil {
		return err
	}
	if err := newClient(*server).do("DELETE", groupsPath(pos[0])+"/"+url.PathEscape(pos[1]), nil, nil); err != nil {
		return err
	}
	fmt.Printf("deleted consumer group %s on stream %s\n", pos[1], pos[0])
	return nil
}
