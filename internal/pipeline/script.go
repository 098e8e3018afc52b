package pipeline

import (
	"crypto/sha1"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// Script is a Lua script as sent to the server: its code, without comment
// lines and indentation, and the SHA1 that EVALSHA names it by.
type Script struct {
	Src string // the code as sent
	SHA string // its SHA1, in hex
}

// NewScript returns src as a Script: comment lines and indentation go, and
// the SHA1 is computed from what remains, never kept by hand.
func NewScript(src string) *Script {
	var b strings.Builder
	for line := range strings.Lines(src) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	code := b.String()
	sum := sha1.Sum([]byte(code))
	return &Script{Src: code, SHA: hex.EncodeToString(sum[:])}
}

// Load returns the calls that load scripts (SCRIPT LOAD), for a Conn's
// opening: a server has the scripts before it is asked to run one.
func Load(scripts ...*Script) []*Call {
	out := make([]*Call, len(scripts))
	for i, s := range scripts {
		out[i] = &Call{Cmd: "SCRIPT", Args: []any{"LOAD", s.Src}}
	}
	return out
}

// isNoScript reports whether err is the server's NOSCRIPT reply.
func isNoScript(err error) bool {
	e, ok := err.(redis.Error)
	return ok && strings.HasPrefix(string(e), "NOSCRIPT")
}

// recover runs when the server did not know c's script (NOSCRIPT: the
// script did not run; its scripts were flushed): the opening calls are
// sent again, so that the server has its scripts, and c, when it asks to
// be (Resend), is sent again whole, with EVAL, whether or not its caller
// still waits: a release must not depend on its caller being patient. A
// call that is not resent gets the NOSCRIPT error, and its caller decides
// without this server's answer. The sending runs in a goroutine of its
// own, since the reader, which calls this, must not block on a write.
func (l *Conn) recover(c *Call) {
	again := c
	if c.Resend {
		args := slices.Clone(c.Args)
		args[0] = c.Script.Src
		again = &Call{Cmd: "EVAL", Args: args, To: c.To, Index: c.Index}
	}
	l.background.Add(1)
	go func() {
		defer l.background.Done()
		if l.opening != nil {
			for _, o := range l.opening() {
				l.Send(o)
			}
		}
		if c.Resend {
			l.Send(again)
		}
	}()
}
