package redlock

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"strings"
)

var (
	//go:embed release.lua
	releaseLua string
	//go:embed extend.lua
	extendLua string
	//go:embed acquire.lua
	acquireLua string
	//go:embed fence.lua
	fenceLua string

	// The scripts are run with EVALSHA, and loaded (SCRIPT LOAD) first
	// thing on every new connection, ahead of any request, so a master has
	// them before it is asked to run one. Should it answer NOSCRIPT all the
	// same (SCRIPT FLUSH), the request is sent again whole, with EVAL, by
	// the connection's reader, whether or not its caller still waits: a
	// release must not depend on its caller being patient.
	releaseSrc = code(releaseLua)
	extendSrc  = code(extendLua)
	acquireSrc = code(acquireLua)
	fenceSrc   = code(fenceLua)

	// The SHA1s, boxed once as request arguments rather than per request.
	releaseSHA any = sha(releaseSrc)
	extendSHA  any = sha(extendSrc)
	acquireSHA any = sha(acquireSrc)
	fenceSHA   any = sha(fenceSrc)
)

func sha(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}

// code strips a script's comment lines and indentation.
func code(src string) string {
	var b strings.Builder
	for line := range strings.Lines(src) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
