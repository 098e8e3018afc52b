package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatus(t *testing.T) {
	ms := masters(t)
	env := redisEnv(ms)

	// All up, and a key held by the library under a namespace.
	l := locker(t, ms, "app")
	held, err := l.LockNs(t.Context(), "report", 20*time.Second)
	require.NoError(t, err)
	// Lock returns at a quorum: let the third SET land too.
	require.Eventually(t, func() bool {
		for _, m := range ms {
			if v, err := redis.String(m.Do(t.Context(), "GET", "app:report")); err != nil || v != held.Value() {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "the key is not on every master")
	r := run(t, env, "status", "--json", "--namespace", "app", "--key", "report")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	rep := decode[statusReport](t, r.stdout)
	assert.Equal(t, "redis", rep.Backend)
	assert.Equal(t, "app:report", rep.Key)
	assert.Equal(t, 3, rep.Up)
	assert.Equal(t, 2, rep.Quorum)
	assert.True(t, rep.QuorumOK)
	assert.Equal(t, 3, rep.KeyHeldOn)
	require.Len(t, rep.Masters, 3)
	for i, m := range rep.Masters {
		assert.Equal(t, ms[i].Addr(), m.Addr)
		assert.True(t, m.Up, "%s: %s", m.Addr, m.Error)
		assert.Empty(t, m.Error)
		assert.Regexp(t, `^7\.`, m.Version)
		assert.Equal(t, "master", m.Role)
		assert.Len(t, m.RunID, 40)
		assert.Greater(t, m.RTTMs, 0.0)
		assert.Less(t, math.Abs(m.ClockOffsetMs), 1000.0, "same host: the clocks agree")
		if assert.NotNil(t, m.Key) {
			assert.True(t, m.Key.Exists)
			assert.Equal(t, "string", m.Key.Type)
			assert.Equal(t, held.Value(), m.Key.Value)
			assert.Greater(t, m.Key.PTTLMs, int64(0))
			assert.LessOrEqual(t, m.Key.PTTLMs, int64(20000))
		}
	}

	// The table.
	r = run(t, env, "status", "--key", "absent")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, "quorum: 3 of 3 masters answer, 2 needed: ok")
	assert.Contains(t, r.stdout, `key "absent": on 0 of 3 masters`)
	for _, m := range ms {
		assert.Contains(t, r.stdout, m.Addr())
	}
	assert.Empty(t, r.stderr)

	// One of three paused: down, but a quorum answers.
	require.NoError(t, ms[0].Pause(t.Context()))
	r = run(t, env, "status", "--json", "--timeout", "300ms")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	rep = decode[statusReport](t, r.stdout)
	assert.False(t, rep.Masters[0].Up)
	assert.NotEmpty(t, rep.Masters[0].Error)
	assert.True(t, rep.Masters[1].Up)
	assert.True(t, rep.Masters[2].Up)
	assert.Equal(t, 2, rep.Up)
	assert.True(t, rep.QuorumOK)
	assert.Less(t, r.elapsed, 5*time.Second, "the paused master is given up after --timeout")

	r = run(t, env, "status", "--timeout", "300ms")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, "quorum: 2 of 3 masters answer, 2 needed: ok")
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, ms[0].Addr()) {
			assert.Contains(t, line, " down ")
		}
	}

	// Two of three paused: no quorum, exit 69.
	require.NoError(t, ms[1].Pause(t.Context()))
	r = run(t, env, "status", "--json", "--timeout", "300ms")
	oneLineError(t, r, exitUnavailable, "1 of 3 masters answer; a quorum needs 2")
	rep = decode[statusReport](t, r.stdout)
	assert.Equal(t, 1, rep.Up)
	assert.False(t, rep.QuorumOK)
	assert.False(t, rep.Masters[0].Up)
	assert.False(t, rep.Masters[1].Up)
	assert.True(t, rep.Masters[2].Up)

	r = run(t, env, "status", "--timeout", "300ms")
	assert.Equal(t, exitUnavailable, r.code)
	assert.Contains(t, r.stdout, "NO QUORUM")

	// --servers: the same masters without a configuration.
	require.NoError(t, ms[0].Unpause(t.Context()))
	require.NoError(t, ms[1].Unpause(t.Context()))
	r = run(t, nil, "status", "--json", "--servers", ms[0].Addr()+","+ms[1].Addr()+","+ms[2].Addr())
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Equal(t, 3, decode[statusReport](t, r.stdout).Up)
}
