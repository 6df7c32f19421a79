// Command wstunnel is a LAB TEST DOUBLE of erebe/wstunnel v10 (see README.md). It is
// installed on lab hosts as /usr/local/bin/wstunnel because the real program cannot be
// downloaded in the lab; `wstunnel --version` says so.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

func main() {
	os.Exit(realMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func startupFailure(stderr io.Writer, what string, err error) int {
	// The real program panics in main (exit status 101) when it cannot start.
	_, _ = fmt.Fprintf(stderr, "thread 'main' panicked at wstunnel-cli/src/main.rs:\nCannot start wstunnel %s: %v\n(wstunnel lab test double)\n", what, err)
	return 101
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	inv, code := parseCommandLine(args, os.LookupEnv, stdout, stderr)
	if inv == nil {
		return code
	}
	logger := newLogger(stderr, parseLogLevel(os.Getenv("RUST_LOG")))

	if inv.server != nil {
		cfg := *inv.server
		cfg.log = logger
		s, err := newServer(cfg)
		if err != nil {
			return startupFailure(stderr, "server", err)
		}
		if err := s.Serve(ctx); err != nil {
			return startupFailure(stderr, "server", err)
		}
		return 0
	}

	if len(inv.clients) == 0 {
		logger.with("", "wstunnel").Infof("Starting wstunnel client v%s (lab test double) with no tunnel to run", mimickedVersion)
		return 0
	}
	var clients []*client
	for _, cfg := range inv.clients {
		cfg.log = logger
		c, err := newClient(cfg)
		if err != nil {
			for _, c := range clients {
				_ = c.sock.Close()
			}
			return startupFailure(stderr, "client", err)
		}
		clients = append(clients, c)
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			_ = c.Run(ctx)
		}(c)
	}
	wg.Wait()
	return 0
}
