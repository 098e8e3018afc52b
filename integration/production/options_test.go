//go:build unix

package production

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
)

// TestACLOptions: what the doc says restartDelay, fencing and replicaAcks
// add to the rule set is enough, as the doc writes the line (keys
// ~myApp:*, locks in the namespace myApp), and what it adds is needed: a
// user without it is refused, with the server's reply.
func TestACLOptions(t *testing.T) {
	const delay = time.Second // the restart protection's; the ttls below are within it
	doc := docRules(t)
	ss := aclMasters(t)
	redistest.StartServer(t, redistest.WithDefaultUserOff(), redistest.WithReplicaOf(ss[0]))
	conns := userConnections(ss)
	waitUptime(t, ss, delay)

	for _, tc := range []struct {
		name    string
		options []string // the doc's additions the user gets
		conns   []object
		lo      object
		denied  string // with the doc's addition taken out: the reply every master gives, or "" when nothing is added
	}{
		{"restartDelay", []string{withRestartDelay}, conns,
			object{"restartDelay": ms(delay)}, replyScriptDenied},
		{"fencing", []string{withFencing}, conns,
			object{"fencing": true}, ""},
		{"restartDelay and fencing", []string{withRestartDelay, withFencing}, conns,
			object{"restartDelay": ms(delay), "fencing": true}, replyScriptDenied},
		// One master and its replica: a master's yes counts once the
		// replica has the write.
		{"replicaAcks", []string{withReplicaAcks}, conns[:1],
			object{"replicaAcks": 1}, replyCommandDenied("wait")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			masters := ss[:len(tc.conns)]
			lo := with(object{"retryCount": 0, "nodeTimeout": ms(nodeTimeout)}, tc.lo)
			fenced := tc.lo["fencing"] == true

			rules := doc.rules(nil, tc.options...)
			t.Logf("ACL SETUSER %s %s", aclUser, strings.Join(rules, " "))
			flush(t, masters)
			seedMarkers(t, masters)
			setUser(t, masters, rules)
			l := create(t, parseConfig(t, tc.conns, lo), docNamespace, nil)
			lk, err := l.LockNs(quick(t), "k", delay/2)
			require.NoError(t, err, "LockNs(%q) as a user with %v", "k", tc.options)
			if fenced {
				assert.Positive(t, lk.Token(), "fencing token")
			}
			lk, err = lk.Extend(quick(t), delay/2)
			require.NoError(t, err, "Extend")
			require.NoError(t, lk.Unlock(quick(t)), "Unlock")
			noDenials(t, masters)

			if tc.denied == "" {
				return
			}
			// Without what the option adds (the first of its rules).
			added := doc.with[tc.options[0]]
			require.NotEmpty(t, added, "the doc adds nothing for %s", tc.options[0])
			setUser(t, masters, without(t, rules, added[0]))
			l = create(t, parseConfig(t, tc.conns, lo), docNamespace, nil)
			_, err = l.LockNs(quick(t), "k2", delay/2)
			t.Logf("without %s: %v", added[0], err)
			require.ErrorIs(t, err, lock.ErrNotAcquired, "LockNs(%q) without %s", "k2", added[0])
			neverNotHeld(t, err, "LockNs")
			for i, s := range masters {
				ne := nodeError(err, i)
				if assert.NotNil(t, ne, "no error for master %d (%s): %v", i, s.Addr(), err) {
					assert.Contains(t, ne.Error(), tc.denied, "master %d", i)
				}
			}
			denied := strings.TrimPrefix(added[0], "+")
			for _, d := range aclLog(t, masters) {
				assert.Equal(t, denied, d.object, "ACL LOG: %v; want only %q denied", d, denied)
			}
			assert.Empty(t, lockKeys(t, masters), "keys left by the refused LockNs")
		})
	}
}

// TestACLFencingWithoutGet: with fencing, the acquiring script reads the
// key's fencing counter with GET; denied GET, every Lock fails. The script
// reads the counter before it sets the key, so it fails before any write
// and leaves nothing behind (it used to set the key first: Redis does not
// undo a script's writes, and the release that followed could not read the
// key either, so every Lock left its key on every master until its ttl).
func TestACLFencingWithoutGet(t *testing.T) {
	doc := docRules(t)
	ss := aclMasters(t)
	setUser(t, ss, without(t, doc.rules(nil, withFencing), "+get"))
	const ttl = 2 * time.Second
	l := create(t, parseConfig(t, userConnections(ss), object{"retryCount": 0, "nodeTimeout": ms(nodeTimeout), "fencing": true}), docNamespace, nil)
	_, err := l.LockNs(quick(t), "k", ttl)
	t.Logf("LockNs: %v", err)
	require.ErrorIs(t, err, lock.ErrNotAcquired, "LockNs(%q) err = %v, want ErrNotAcquired", "k", err)
	neverNotHeld(t, err, "LockNs")
	for i, s := range ss {
		ne := nodeError(err, i)
		if assert.NotNil(t, ne, "no error for master %d (%s): %v", i, s.Addr(), err) {
			assert.Contains(t, ne.Error(), replyScriptDenied, "master %d", i)
		}
	}
	assert.Empty(t, keysWithTTL(t, ss), "keys left by the refused acquisitions")
	for _, d := range aclLog(t, ss) {
		assert.Equal(t, "get", d.object, "ACL LOG: %v; want only get denied", d)
	}
}
