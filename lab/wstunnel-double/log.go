package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Log levels, in the order tracing uses them.
const (
	lvlTrace = iota
	lvlDebug
	lvlInfo
	lvlWarn
	lvlError
	lvlOff
)

var levelNames = [...]string{"TRACE", "DEBUG", " INFO", " WARN", "ERROR"}

// Logger writes lines shaped like the tracing-subscriber "fmt" output of the real
// wstunnel (without colours):
//
//	2025-01-02T03:04:05.123456Z  INFO tunnel{id=… remote=…}: wstunnel::tunnel::server: message
//
// It never gets the HTTP upgrade path prefix: callers redact it before logging
// (see redactPath).
type Logger struct {
	mu    sync.Mutex
	w     io.Writer
	level int
}

func newLogger(w io.Writer, level int) *Logger { return &Logger{w: w, level: level} }

// parseLogLevel reads RUST_LOG the simple way: a bare level name sets the level; anything
// else (directives such as "wstunnel=debug") falls back to INFO.
func parseLogLevel(v string) int {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "TRACE":
		return lvlTrace
	case "DEBUG":
		return lvlDebug
	case "WARN":
		return lvlWarn
	case "ERROR":
		return lvlError
	case "OFF":
		return lvlOff
	default:
		return lvlInfo
	}
}

func (l *Logger) logf(level int, span, target, format string, args ...any) {
	if l == nil || level < l.level || level >= lvlOff {
		return
	}
	msg := fmt.Sprintf(format, args...)
	var b strings.Builder
	b.WriteString(time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteByte(' ')
	b.WriteString(levelNames[level])
	b.WriteByte(' ')
	if span != "" {
		b.WriteString(span)
		b.WriteString(": ")
	}
	b.WriteString(target)
	b.WriteString(": ")
	b.WriteString(msg)
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, b.String())
}

// spanLogger binds a span and a target, to keep call sites short.
type spanLogger struct {
	l      *Logger
	span   string
	target string
}

func (l *Logger) with(span, target string) spanLogger {
	return spanLogger{l: l, span: span, target: target}
}

func (s spanLogger) child(span string) spanLogger {
	if s.span != "" && span != "" {
		span = s.span + ":" + span
	} else if span == "" {
		span = s.span
	}
	return spanLogger{l: s.l, span: span, target: s.target}
}

func (s spanLogger) withTarget(t string) spanLogger {
	return spanLogger{l: s.l, span: s.span, target: t}
}

func (s spanLogger) Tracef(f string, a ...any) { s.l.logf(lvlTrace, s.span, s.target, f, a...) }
func (s spanLogger) Debugf(f string, a ...any) { s.l.logf(lvlDebug, s.span, s.target, f, a...) }
func (s spanLogger) Infof(f string, a ...any)  { s.l.logf(lvlInfo, s.span, s.target, f, a...) }
func (s spanLogger) Warnf(f string, a ...any)  { s.l.logf(lvlWarn, s.span, s.target, f, a...) }
func (s spanLogger) Errorf(f string, a ...any) { s.l.logf(lvlError, s.span, s.target, f, a...) }

// redactPath replaces the first path segment (the secret path prefix) of a request target
// by "<redacted>", keeping the rest, so a log line can show which endpoint was asked for
// without ever showing the prefix value.
func redactPath(requestURI string) string {
	if !strings.HasPrefix(requestURI, "/") {
		// absolute-form or garbage: say nothing about it
		return "<redacted request target>"
	}
	rest := requestURI[1:]
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return "/<redacted>"
	}
	return "/<redacted>" + rest[i:]
}
