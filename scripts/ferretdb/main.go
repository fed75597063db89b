// Command curbside-ferretdb runs FerretDB v1 (MongoDB wire protocol over SQLite or
// PostgreSQL) for tests and local development. Upstream's own cmd/ferretdb binary panics
// when built with `go install` (a release-time version file is missing, FerretDB#2982),
// so we embed the library instead.
//
// Usage: curbside-ferretdb -listen 127.0.0.1:27018 -dir /tmp/data
//
//	curbside-ferretdb -listen 127.0.0.1:27018 -handler postgresql -postgresql-url postgres://postgres@127.0.0.1:5432/DBNAME
//
// On start it prints "READY mongodb://HOST:PORT/" to stdout once the listener is bound.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	dir := flag.String("dir", "", "directory for SQLite files (required with -handler sqlite)")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/DBNAME (required with -handler postgresql)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	config := ferretdb.Config{Handler: *handler}
	switch *handler {
	case "sqlite":
		if *dir == "" {
			fmt.Fprintln(os.Stderr, "curbside-ferretdb: -dir is required with -handler sqlite")
			os.Exit(2)
		}
		abs, err := filepath.Abs(*dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "curbside-ferretdb:", err)
			os.Exit(2)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "curbside-ferretdb:", err)
			os.Exit(2)
		}
		config.SQLiteURL = "file:" + abs + "/"
	case "postgresql":
		if *pgURL == "" {
			fmt.Fprintln(os.Stderr, "curbside-ferretdb: -postgresql-url is required with -handler postgresql")
			os.Exit(2)
		}
		config.PostgreSQLURL = *pgURL
	default:
		fmt.Fprintln(os.Stderr, "curbside-ferretdb: -handler must be sqlite or postgresql")
		os.Exit(2)
	}

	// Resolve port 0 ourselves so we can report the real address.
	addr := *listen
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "curbside-ferretdb: bad -listen:", err)
		os.Exit(2)
	}
	if port == "0" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "curbside-ferretdb:", err)
			os.Exit(1)
		}
		addr = l.Addr().String()
		l.Close()
		_ = host
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	config.Listener = ferretdb.ListenerConfig{TCP: addr}
	config.Logger = logger
	f, err := ferretdb.New(&config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "curbside-ferretdb:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan struct{})
	go func() {
		_ = f.Run(ctx)
		close(done)
	}()

	// Wait until the port accepts connections, then announce readiness.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "curbside-ferretdb: listener did not come up:", err)
			os.Exit(1)
		}
		select {
		case <-done:
			fmt.Fprintln(os.Stderr, "curbside-ferretdb: stopped before becoming ready")
			os.Exit(1)
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Printf("READY mongodb://%s/\n", addr)
	<-done
}
