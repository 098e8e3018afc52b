package redlock

import (
	_ "embed"

	"github.com/gomodule/redigo/redis"
)

var (
	//go:embed release.lua
	releaseSrc string
	//go:embed extend.lua
	extendSrc string
	//go:embed acquire.lua
	acquireSrc string

	// redigo computes each script's SHA1 and runs EVALSHA, falling back to
	// EVAL when a master answers NOSCRIPT (after a restart, say). The
	// release script is always sent whole (see node.release).
	extendScript  = redis.NewScript(1, extendSrc)
	acquireScript = redis.NewScript(2, acquireSrc)
)
