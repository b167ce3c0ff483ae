package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/streams"
)

func init() {
	register("streams", "create, list, describe, delete, split and merge streams", runStreams)
}

const streamsHelp = `Usage: runnel streams <subcommand> [flags]

Subcommands:
  create NAME --shards N [--retention-hours H]   create a stream
  list                                           list streams
  describe NAME                                  show a stream and its shards (--json for raw)
  delete NAME                                    delete a stream and its records
  split NAME SHARD [--at HASHKEY]                split a shard (default: at its middle)
  merge NAME SHARD ADJACENT_SHARD                merge two adjacent shards
  resize NAME --shards N                         change the open shard count uniformly

Every subcommand takes --server URL (default http://127.0.0.1:7070, env RUNNEL_SERVER) and,
for a server with auth on, --token TOKEN (env RUNNEL_TOKEN); each subcommand's
--help lists its flags.`

func runStreams(args []string) error {
	return runSubcommand(args, streamsHelp, map[string]func([]string) error{
		"create": streamsCreate, "list": streamsList, "describe": streamsDescribe, "delete": streamsDelete,
		"split": streamsSplit, "merge": streamsMerge, "resize": streamsResize,
	})
}

// runSubcommand runs the subcommand args[0] names with the rest of args;
// no args, -h, --help or help print help (no args is a usage error).
func runSubcommand(args []string, help string, subs map[string]func([]string) error) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(helpOut(len(args) > 0), help)
		if len(args) == 0 {
			return fmt.Errorf("%w: give a subcommand (listed above)", errUsage)
		}
		return nil
	}
	if run, ok := subs[args[0]]; ok {
		return run(args[1:])
	}
	return fmt.Errorf("%w: unknown subcommand %q\n\n%s", errUsage, args[0], help)
}

func streamsCreate(args []string) error {
	fs := newFlags("streams create", "streams create NAME --shards N [--retention-hours H]", "Creates a stream whose shards split the hash-key space evenly.")
	server := addServerFlag(fs)
	shards := fs.Int("shards", 1, "number of shards (1-1024)")
	ret := fs.Int("retention-hours", 24, "retention in hours (24-8760)")
	pos, err := parseInterspersed(fs, args, 1, "NAME")
	if err != nil {
		return err
	}
	if err := shardCountFlag(*shards); err != nil {
		return err
	}
	if *ret < streams.MinRetentionHours || *ret > streams.MaxRetentionHours {
		return fmt.Errorf("%w: --retention-hours must be %d to %d, not %d", errUsage, streams.MinRetentionHours, streams.MaxRetentionHours, *ret)
	}
	var out map[string]any
	if err := newClient(*server).do("POST", "/api/v1/streams", map[string]any{"name": pos[0], "shards": *shards, "retention_hours": *ret}, &out); err != nil {
		return argWords(err, pos[0], map[string]string{"name": "NAME", "shards": "--shards", "retention_hours": "--retention-hours"})
	}
	noun := "shards"
	if *shards == 1 {
		noun = "shard"
	}
	fmt.Printf("created stream %s with %d %s\n", pos[0], *shards, noun)
	return nil
}

type streamView struct {
	Name           string `json:"name"`
	Status         string `json:"status"`
	Created        string `json:"created"`
	RetentionHours int    `json:"retention_hours"`
	OpenShards     int    `json:"open_shards"`
	Shards         []struct {
		ID             string   `json:"id"`
		HashKeyStart   string   `json:"hash_key_start"`
		HashKeyEnd     string   `json:"hash_key_end"`
		Parent         string   `json:"parent"`
		AdjacentParent string   `json:"adjacent_parent"`
		Children       []string `json:"children"`
		Open           bool     `json:"open"`
		TrimPosition   uint64   `json:"trim_position"`
		LastPosition   uint64   `json:"last_position"`
	} `json:"shards"`
}

func streamsList(args []string) error {
	var out struct {
		Streams []streamView `json:"streams"`
	}
	if err := getCommand("streams list", "Lists streams.", "/api/v1/streams", args, &out); err != nil {
		return err
	}
	tw := newTable("NAME\tSTATUS\tOPEN SHARDS\tRETENTION\tCREATED")
	for _, s := range out.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%dh\t%s\n", s.Name, s.Status, s.OpenShards, s.RetentionHours, s.Created)
	}
	return tw.Flush()
}

func streamsDescribe(args []string) error {
	fs := newFlags("streams describe", "streams describe NAME [--json]", "Shows a stream, its shards, their hash ranges and lineage.")
	server := addServerFlag(fs)
	raw := fs.Bool("json", false, "print the raw JSON")
	pos, err := parseInterspersed(fs, args, 1, "NAME")
	if err != nil {
		return err
	}
	var s streamView
	if printed, err := getOrPrint(*server, "/api/v1/streams/"+url.PathEscape(pos[0]), *raw, &s); err != nil || printed {
		return err
	}
	fmt.Printf("stream %s  status %s  retention %dh  open shards %d\n", s.Name, s.Status, s.RetentionHours, s.OpenShards)
	tw := newTable("SHARD\tSTATE\tRECORDS (positions)\tPARENTS\tHASH KEY RANGE")
	for _, sh := range s.Shards {
		state := "open"
		if !sh.Open {
			state = "closed"
		}
		parents := sh.Parent
		if sh.AdjacentParent != "" {
			parents += "+" + sh.AdjacentParent
		}
		records := "none" // nothing written yet, or all of it past retention
		if sh.LastPosition >= sh.TrimPosition {
			records = fmt.Sprintf("%d..%d", sh.TrimPosition, sh.LastPosition)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s..%s\n", sh.ID, state, records, parents, sh.HashKeyStart, sh.HashKeyEnd)
	}
	return tw.Flush()
}

func streamsDelete(args []string) error {
	fs := newFlags("streams delete", "streams delete NAME", "Deletes a stream and all its records.")
	return callOne(fs, addServerFlag(fs), args, "NAME", "DELETE", "/api/v1/streams/", "", "deleted stream")
}

func streamsSplit(args []string) error {
	fs := newFlags("streams split", "streams split NAME SHARD [--at HASHKEY]", "Splits an open shard into two children; the parent closes and stays readable until retention. SHARD is a shard id or its number (3 for shardId-000000000003).")
	server := addServerFlag(fs)
	at := fs.String("at", "", "new starting hash key of the upper child (decimal; default: the middle of the shard's range)")
	pos, err := parseInterspersed(fs, args, 2, "NAME SHARD")
	if err != nil {
		return err
	}
	body := map[string]any{"shard": shardArg(pos[1]), "new_starting_hash_key": *at}
	if err := newClient(*server).do("POST", "/api/v1/streams/"+url.PathEscape(pos[0])+"/split", body, nil); err != nil {
		return argWords(err, pos[0], map[string]string{"shard": "SHARD " + pos[1], "new_starting_hash_key": "--at"})
	}
	fmt.Printf("split %s of stream %s\n", shardArg(pos[1]), pos[0])
	return nil
}

func streamsMerge(args []string) error {
	fs := newFlags("streams merge", "streams merge NAME SHARD ADJACENT_SHARD", "Merges two open shards with adjacent hash ranges into one child. A shard is named by its id or its number (3 for shardId-000000000003).")
	server := addServerFlag(fs)
	pos, err := parseInterspersed(fs, args, 3, "NAME SHARD ADJACENT_SHARD")
	if err != nil {
		return err
	}
	body := map[string]any{"shard": shardArg(pos[1]), "adjacent_shard": shardArg(pos[2])}
	if err := newClient(*server).do("POST", "/api/v1/streams/"+url.PathEscape(pos[0])+"/merge", body, nil); err != nil {
		return argWords(err, pos[0], map[string]string{"shard": "SHARD " + pos[1], "adjacent_shard": "ADJACENT_SHARD " + pos[2]})
	}
	fmt.Printf("merged %s and %s of stream %s\n", shardArg(pos[1]), shardArg(pos[2]), pos[0])
	return nil
}

// shardCountFlag checks a --shards value before it is sent (a usage
// error).
func shardCountFlag(n int) error {
	if n < 1 || n > streams.MaxShards {
		return fmt.Errorf("%w: --shards must be 1 to %d, not %d", errUsage, streams.MaxShards, n)
	}
	return nil
}

func streamsResize(args []string) error {
	fs := newFlags("streams resize", "streams resize NAME --shards N", "Changes the number of open shards to N, with even hash ranges (splits and merges, as Kinesis UpdateShardCount).")
	server := addServerFlag(fs)
	n := fs.Int("shards", 0, "target number of open shards (required)")
	pos, err := parseInterspersed(fs, args, 1, "NAME")
	if err != nil {
		return err
	}
	if *n == 0 {
		return fmt.Errorf("%w: --shards N is required: the number of open shards the stream is to have", errUsage)
	}
	if err := shardCountFlag(*n); err != nil {
		return err
	}
	if err := newClient(*server).do("POST", "/api/v1/streams/"+url.PathEscape(pos[0])+"/shard-count", map[string]any{"target": *n}, nil); err != nil {
		return argWords(err, pos[0], map[string]string{"target": "--shards", "target_shard_count": "--shards"})
	}
	fmt.Printf("stream %s now has %d open shards\n", pos[0], *n)
	return nil
}

// argWords rewrites a server's answer about a request field as the
// argument or flag of the command that sent it: labels maps the API's field
// names to what the user typed (such as "ADJACENT_SHARD 5" or "--at"). The
// field's name in the message ("merge shards: adjacent_shard: ...") becomes
// the label, or the label leads a message that does not name the field. An
// answer that a shard does not exist adds the command that lists the
// stream's shards.
func argWords(err error, stream string, labels map[string]string) error {
	ae, ok := err.(*apiErr)
	if !ok || ae.Field == "" || labels[ae.Field] == "" {
		return err
	}
	e := *ae
	label := labels[e.Field]
	if before, after, found := strings.Cut(e.Message, ": "+e.Field+": "); found {
		e.Message = before + ": " + label + ": " + after
	} else if rest, found := strings.CutPrefix(e.Message, e.Field+": "); found {
		e.Message = label + ": " + rest
	} else {
		e.Message = label + ": " + e.Message
	}
	if e.Code == "not_found" && strings.Contains(e.Message, "has no shard") {
		e.Message += fmt.Sprintf(" ('runnel streams describe %s' lists its shards)", stream)
	}
	e.Field = ""
	return &e
}

// shardArg accepts "3" as shorthand for "shardId-000000000003".
func shardArg(s string) string {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return fmt.Sprintf("shardId-%012d", n)
	}
	return s
}
