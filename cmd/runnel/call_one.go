package main

import (
	"flag"
	"fmt"
	"net/url"
)

// callOne is the whole of a command that acts on one thing the server
// holds, named by its only positional argument (what): it sends method to
// prefix + the escaped name + suffix, and prints done and the name.
func callOne(fs *flag.FlagSet, server *string, args []string, what, method, prefix, suffix, done string) error {
	pos, err := parseInterspersed(fs, args, 1, what)
	if err != nil {
		return err
	}
	if err := newClient(*server).do(method, prefix+url.PathEscape(pos[0])+suffix, nil, nil); err != nil {
		return err
	}
	fmt.Printf("%s %s\n", done, pos[0])
	return nil
}
