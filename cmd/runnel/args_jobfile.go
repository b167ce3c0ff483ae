package main

import (
	"flag"
	"os"
)

// parseWithJobFile parses a command's flags and its want positional
// arguments as parseInterspersed does, for a command whose last positional
// argument is a job file, and reads that file.
func parseWithJobFile(fs *flag.FlagSet, args []string, want int, names string) (pos []string, src []byte, err error) {
	pos, err = parseInterspersed(fs, args, want, names)
	if err != nil {
		return nil, nil, err
	}
	src, err = os.ReadFile(pos[want-1])
	if err != nil {
		return nil, nil, err
	}
	return pos, src, nil
}
