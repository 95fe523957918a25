// Command benchtool is the load-side half of bench/run.sh: the loopback
// servers the benchmark puts behind Caddy (a static upstream, a counting
// proxy in front of the real Better Auth, a Better Auth stub) and the checks
// that wrk cannot do (cold-cache burst, upstream/query overlap, memory while
// streaming 10 MiB pages, memory with 100k distinct users).
//
// Every subcommand is bounded in time and talks to 127.0.0.1 only.
//
//	benchtool ports N
//	benchtool serve -upstream ADDR -countproxy ADDR -ba URL -stub ADDR -stub-delay 50ms
//	benchtool setup -ba URL -out DIR
//	benchtool check URL COOKIE WANT_QUERIES
//	benchtool cold -ba URL -email E -password P -url URL -counts URL -n 64
//	benchtool overlap -plain URL -sidecar URL -cookie C -n 20
//	benchtool mem10 -pid PID -plain URL -sidecar URL -cookie C -conc 4 -dur 6s
//	benchtool users -pid PID -url URL -counts URL -n 100000 -conc 32 -cache-size BYTES
//	benchtool calls BEFORE.json AFTER.json
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool ports|serve|setup|check|cold|overlap|mem10|users ...")
		os.Exit(2)
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "ports":
		err = ports(args)
	case "serve":
		err = serve(args)
	case "setup":
		err = setup(args)
	case "check":
		err = check(args)
	case "cold":
		err = cold(args)
	case "overlap":
		err = overlap(args)
	case "mem10":
		err = mem10(args)
	case "users":
		err = users(args)
	case "calls":
		err = calls(args)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool "+os.Args[1]+":", err)
		os.Exit(1)
	}
}

// ports prints N loopback ports that were free a moment ago, one a line.
func ports(args []string) error {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil {
			return err
		}
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// calls prints the Better Auth calls between two counts snapshots (files
// holding the counting proxy's JSON): "GET_SESSION LISTS OTHER".
func calls(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: benchtool calls BEFORE.json AFTER.json")
	}
	var snaps [2]map[string]int
	for i, name := range args {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &snaps[i]); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	var gs, lists, other int
	for path, n := range delta(snaps[0], snaps[1]) {
		switch ep := strings.TrimPrefix(path, "/api/auth"); {
		case ep == "/get-session":
			gs += n
		case strings.Contains(ep, "list"):
			lists += n
		default:
			other += n
		}
	}
	fmt.Println(gs, lists, other)
	return nil
}
