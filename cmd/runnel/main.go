// Command runnel is the Runnel server and CLI: one binary for the stream log,
// the job runtime and the tools around them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
)

// A command is one `runnel <name>` subcommand. Commands register themselves
// from init functions in their own files (serve.go, streams.go, ...), so each
// concept keeps its CLI next to nothing else.
type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	if _, dup := commands[name]; dup {
		panic("runnel: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// errUsage marks an error whose message already explains the right usage;
// main prints it and exits 2.
var errUsage = errors.New("usage")

// isHelp says whether arg asks for help where a subcommand is expected.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// helpOut is where help goes: stdout when it was asked for (exit 0), stderr
// when it comes with a usage error (exit 2).
func helpOut(asked bool) *os.File {
	if asked {
		return os.Stdout
	}
	return os.Stderr
}

const exitCodes = `Exit codes: 0 done (also after --help, and after Ctrl-C or SIGTERM ends a command
that runs until stopped, such as serve, consume or tail --follow), 1 failed, 2 usage error.`

func usage(w io.Writer) {
	fmt.Fprintln(w, "runnel — a durable sharded stream log and stream-processing runtime")
	fmt.Fprintln(w, "\nUsage: runnel <command> [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'runnel <command> --help' for a command's flags.\n"+exitCodes)
}

// defaultGOGC trades memory for throughput: record processing allocates
// many short-lived values, and collecting less often speeds up the job
// benchmark (runnel bench job). GOGC in the environment still wins.
const defaultGOGC = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	args := os.Args[1:]
	if len(args) == 2 && args[0] == "help" {
		// runnel help CMD is runnel CMD --help.
		args = []string{args[1], "--help"}
	}
	if len(args) == 0 || isHelp(args[0]) {
		usage(helpOut(len(args) > 0))
		if len(args) == 0 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "runnel: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		os.Exit(2)
	}
	if err := cmd.run(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		err = withListHint(inCLIWords(err))
		fmt.Fprintf(os.Stderr, "runnel %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// newFlags makes a FlagSet whose --help prints the command's synopsis, a
// description and its flags (on stdout; see parseFlags).
func newFlags(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("runnel "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stdout)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: runnel %s\n\n%s\n", synopsis, strings.TrimSpace(description))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// serverURL is the default for --server on commands that talk to a server.
func serverURL() string {
	if u := os.Getenv("RUNNEL_SERVER"); u != "" {
		return u
	}
	return "http://127.0.0.1:7070"
}

// parseInterspersed parses flags given before, between or after positional
// arguments, and checks that there are want of them (-1: any number).
func parseInterspersed(fs *flag.FlagSet, args []string, want int, names string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if want >= 0 && len(pos) != want {
		if want == 0 {
			return nil, fmt.Errorf("%w: unexpected argument %q (see --help)", errUsage, pos[0])
		}
		return nil, fmt.Errorf("%w: expected %s (see --help)", errUsage, names)
	}
	return pos, nil
}

// parseFlags parses args into fs. -h or --help prints the command's usage
// on stdout and returns flag.ErrHelp (main exits 0). A flag that is unknown
// or has a bad value is a usage error (exit 2), as a missing argument is;
// main prints it once, with where to find the flags rather than all of
// them.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard) // the flag package would print the problem and the usage
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	}
	return fmt.Errorf("%w: %v (see '%s --help')", errUsage, err, fs.Name())
}

// checkServerURL says what is wrong with a --server (or RUNNEL_SERVER)
// value that is not an http or https URL with a host, such as one without
// its scheme, before a request goes to it (a usage error).
func checkServerURL(server string) error {
	u, err := url.Parse(server)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return fmt.Errorf("%w: --server %q (or RUNNEL_SERVER) is not a server URL: give one such as http://127.0.0.1:7070", errUsage, server)
}

// restInCLI is how the server's answers name REST calls that a command
// makes, each with the words a CLI user is shown instead. rewrite gets the
// match's submatches, path segments already unescaped.
var restInCLI = []struct {
	re      *regexp.Regexp
	rewrite func(m []string) string
}{
	// "(DELETE /api/v1/jobs/ID or runnel jobs stop ID)": the answer names
	// the command itself beside the call; keep only the command.
	{regexp.MustCompile(`(?:GET|POST|PUT|DELETE) /api/v1/\S+ or (runnel [^)]+)`), func(m []string) string {
		return "'" + m[1] + "'"
	}},
	{regexp.MustCompile(`GET /api/v1/jobs/([^/\s)]+)/checkpoints`), func(m []string) string {
		return "'runnel jobs checkpoints " + m[1] + "'"
	}},
	{regexp.MustCompile(`GET /api/v1/savepoints`), func([]string) string {
		return "'runnel jobs savepoints'"
	}},
}

// inCLIWords rewrites the REST calls a server's answer names as the
// commands that make them.
func inCLIWords(err error) error {
	ae, ok := err.(*apiErr)
	if !ok {
		return err
	}
	msg := ae.Message
	for _, r := range restInCLI {
		msg = r.re.ReplaceAllStringFunc(msg, func(s string) string {
			m := r.re.FindStringSubmatch(s)
			for i := 1; i < len(m); i++ {
				if u, err := url.PathUnescape(m[i]); err == nil {
					m[i] = u
				}
			}
			return r.rewrite(m)
		})
	}
	if msg == ae.Message {
		return err
	}
	e := *ae
	e.Message = msg
	return &e
}

// withListHint adds to a server's answer that a job, stream or consumer
// group does not exist the command that lists those that do.
func withListHint(err error) error {
	var ae *apiErr
	if !errors.As(err, &ae) || ae.Code != "not_found" {
		return err
	}
	switch m := ae.Message; {
	case strings.HasPrefix(m, "job not found"):
		return fmt.Errorf("%w ('runnel jobs list' lists the jobs)", err)
	case strings.Contains(m, "has no consumer group"):
		return fmt.Errorf("%w ('runnel groups list STREAM' lists a stream's groups)", err)
	case strings.Contains(m, "stream ") && strings.HasSuffix(m, "does not exist"):
		return fmt.Errorf("%w ('runnel streams list' lists the streams)", err)
	}
	return err
}
