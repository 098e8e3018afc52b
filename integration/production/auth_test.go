//go:build unix

package production

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
)

// Redis 7.0's replies to credentials it refuses.
const (
	replyWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	replyNoAuth    = "NOAUTH Authentication required."
)

// scheduleOf10 is a retry schedule a refusal must not be put through: ten
// more attempts, a second apart.
var scheduleOf10 = object{"retryCount": 10, "retryDelay": 1000, "retryJitter": 0, "nodeTimeout": ms(nodeTimeout)}

// TestAuth: credentials a master refuses (a wrong password, none where one
// is needed, a user denied a command the dial sends) are configuration
// errors: every master's error matches ErrAuth, not ErrUnreachable, names
// the master and quotes its reply, and the Lock fails after one attempt,
// whether the configuration came to lock.Create or through LOCK_CONFIG.
// While a quorum accepts the credentials, one master's refusal does not
// stop a Lock.
func TestAuth(t *testing.T) {
	doc := docRules(t)
	ss := aclMasters(t) // default user off: the lock's user, as the doc has it (no +select)
	setUser(t, ss, doc.rules(nil))
	requirepass := redistest.StartServer(t, redistest.WithPassword("s3cret"))

	user := func(s *redistest.Server, more object) object {
		return with(hostPort(s), with(object{"username": aclUser, "password": aclPassword}, more))
	}
	each := func(ss []*redistest.Server, conn func(*redistest.Server) object) []object {
		out := make([]object, len(ss))
		for i, s := range ss {
			out[i] = conn(s)
		}
		return out
	}
	cases := []struct {
		name    string
		masters []*redistest.Server
		conn    func(*redistest.Server) object
		reply   string
	}{
		{"WRONGPASS", ss,
			func(s *redistest.Server) object { return user(s, object{"password": "not-the-password"}) },
			replyWrongPass},
		{"WRONGPASS in a URL", ss,
			func(s *redistest.Server) object {
				return object{"url": fmt.Sprintf("redis://%s:not-the-password@%s", aclUser, s.Addr())}
			},
			replyWrongPass},
		{"NOAUTH, default user off", ss, hostPort, replyNoAuth},
		{"NOAUTH, requirepass", []*redistest.Server{requirepass}, hostPort, replyNoAuth},
		{"NOPERM at dial, SELECT denied", ss,
			func(s *redistest.Server) object { return user(s, object{"db": 1}) },
			replyCommandDenied("select")},
	}
	for _, tc := range cases {
		conns := each(tc.masters, tc.conn)
		for _, via := range []string{"Create", "FromEnv"} {
			t.Run(tc.name+" via "+via, func(t *testing.T) {
				flush(t, tc.masters)
				var l lock.Locker
				switch via {
				case "Create":
					l = create(t, parseConfig(t, conns, scheduleOf10), docNamespace, nil)
				case "FromEnv":
					raw, err := json.Marshal(object{"namespace": docNamespace,
						"lockConfig": json.RawMessage(configJSON(t, conns, scheduleOf10))})
					require.NoError(t, err)
					t.Setenv(lock.EnvVar, string(raw))
					l, err = lock.FromEnv("")
					require.NoError(t, err, "lock.FromEnv with %s=%s", lock.EnvVar, raw)
					t.Cleanup(func() { _ = l.Destroy() })
				}
				start := time.Now()
				_, err := l.LockNs(quick(t), "k", time.Second)
				took := time.Since(start)
				t.Logf("LockNs took %v: %v", took, err)
				require.ErrorIs(t, err, lock.ErrNotAcquired, "LockNs(%q) err = %v, want ErrNotAcquired", "k", err)
				require.ErrorIs(t, err, lock.ErrAuth, "LockNs(%q) err = %v, want ErrAuth", "k", err)
				assert.NotErrorIs(t, err, lock.ErrUnreachable, "refused credentials are not an unreachable master")
				neverNotHeld(t, err, "LockNs")
				for _, secret := range []string{"not-the-password", aclPassword, "s3cret"} {
					assert.NotContains(t, err.Error(), secret, "the error shows a password")
				}
				le := lockError(t, err)
				assert.Equal(t, "myApp:k", le.Key)
				assert.Equal(t, 1, le.Attempts, "LockNs(%q) attempts = %d, want 1: refused credentials are not retried", "k", le.Attempts)
				assert.Less(t, took, 900*time.Millisecond, "LockNs(%q) took %v, want well under the 1s retry delay", "k", took)
				for i, s := range tc.masters {
					ne := nodeError(err, i)
					if !assert.NotNil(t, ne, "LockNs(%q) err = %v: no error for master %d (%s)", "k", err, i, s.Addr()) {
						continue
					}
					assert.ErrorIs(t, ne, lock.ErrAuth, "master %d", i)
					assert.NotErrorIs(t, ne, lock.ErrUnreachable, "master %d", i)
					assert.Equal(t, s.Addr(), ne.Addr, "master %d", i)
					assert.Contains(t, err.Error(), fmt.Sprintf("(%s): ", s.Addr())+lock.ErrAuth.Error()+": "+tc.reply,
						"the error names master %d and quotes its reply", i)
				}
				assert.Empty(t, allKeys(t, tc.masters), "keys left behind")
			})
		}
	}

	// One master of three refuses: the other two are a quorum, and every
	// call goes on without it; its refusal is still told to the Observer.
	for _, tc := range cases {
		if len(tc.masters) != len(ss) {
			continue
		}
		t.Run("one of three: "+tc.name, func(t *testing.T) {
			flush(t, ss)
			conns := each(ss, func(s *redistest.Server) object { return user(s, nil) })
			conns[1] = tc.conn(ss[1])
			refused := make(chan error, 100)
			obs := lock.ObserverFunc(func(e lock.Event) {
				if e.Kind == lock.KindNode && e.Node == 1 && e.Err != nil {
					select {
					case refused <- e.Err:
					default:
					}
				}
			})
			l := create(t, parseConfig(t, conns, scheduleOf10), docNamespace, obs)
			lk, err := l.LockNs(quick(t), "k", time.Second)
			require.NoError(t, err, "LockNs(%q) with master 1 of 3 refusing the credentials", "k")
			lk, err = lk.Extend(quick(t), time.Second)
			require.NoError(t, err, "Extend")
			require.NoError(t, lk.Unlock(quick(t)), "Unlock")
			select {
			case err := <-refused:
				assert.ErrorIs(t, err, lock.ErrAuth, "the Observer's event for master 1")
				assert.Contains(t, err.Error(), tc.reply)
			default:
				t.Errorf("the Observer was not told of master 1's refusal")
			}
			assert.Empty(t, allKeys(t, ss), "keys left behind")
		})
	}
}
