package redlock

import (
	_ "embed"

	"github.com/leverege/lock/internal/pipeline"
)

// The Lua scripts, each documented in its .lua file. They run with
// EVALSHA, and every new connection loads them (SCRIPT LOAD) ahead of any
// request, so a master has them before it is asked to run one; should it
// answer NOSCRIPT all the same (SCRIPT FLUSH), the transport loads them
// again, and a release or extend is sent again whole, with EVAL (see
// pipeline.Call.Resend).
var (
	//go:embed acquire.lua
	acquireLua string
	//go:embed release.lua
	releaseLua string
	//go:embed extend.lua
	extendLua string
	//go:embed fence.lua
	fenceLua string
	// get.lua goes in front of the compare-and-act scripts: one GET that
	// tells "not ours" from an error, for the three.
	//go:embed get.lua
	getLua string

	acquireScript = pipeline.NewScript(acquireLua)
	releaseScript = pipeline.NewScript(getLua + releaseLua)
	extendScript  = pipeline.NewScript(getLua + extendLua)
	fenceScript   = pipeline.NewScript(getLua + fenceLua)

	// The SHA1s, boxed once as command arguments rather than per request.
	acquireSHA any = acquireScript.SHA
	releaseSHA any = releaseScript.SHA
	extendSHA  any = extendScript.SHA
	fenceSHA   any = fenceScript.SHA
)
