package redlock

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gomodule/redigo/redis"

	"github.com/leverege/lock/internal/pipeline"
	"github.com/leverege/lock/internal/redisinfo"
	"github.com/leverege/lock/lockerr"
	"github.com/leverege/lock/observe"
)

// What each master tells about itself when a connection to it opens: the
// last call of every connection's opening is INFO, whose reply comes
// before the reply to anything queued behind it. From it the Client learns
// the master's run_id, to refuse two masters that are one server (Redlock
// needs independent ones), and its maxmemory-policy, to warn of a master
// that can evict lock keys (every lock key has a ttl) and, with
// requireNoEviction, not to count its votes; and its role: an address that
// leads to a replica (a managed endpoint that, after a failover, still
// leads to the demoted master for a while) answers a script that writes
// nothing as a master would, so its answers must not count.
//
// The first attempt of a Client waits for every master's answer (each
// within the node timeout) before it decides, so that it knows them all;
// later ones do not wait (see attempt).

// contacts keeps what every master told about itself.
type contacts struct {
	c       *Client
	mu      sync.Mutex
	masters []contact
	// same is ErrSameServer, naming two masters, while two have the same
	// run_id; nil otherwise. Read without mu on every attempt.
	same atomic.Pointer[error]
	// introduced is set once an attempt has heard from every master (or
	// given up on it), so that their run_ids are known.
	introduced atomic.Bool
}

// contact is what one master told, from its latest connection.
type contact struct {
	runID     string
	policy    string // maxmemory-policy
	maxmemory int64
	evicts    atomic.Bool // with maxmemory set, the policy can evict keys with a ttl
	denied    bool        // it refused INFO (told once)
	// replica: INFO said role:slave, or a write was answered READONLY,
	// since the last connection whose INFO said role:master.
	replica atomic.Bool
}

func (k *contacts) init(c *Client) {
	k.c = c
	k.masters = make([]contact, len(c.masters))
}

// opening is what every new connection to master i sends first: the
// scripts, then INFO.
func (k *contacts) opening(i int) func() []*pipeline.Call {
	return func() []*pipeline.Call {
		return append(pipeline.Load(releaseScript, extendScript, acquireScript, fenceScript),
			&pipeline.Call{Cmd: "INFO", To: k, Index: i})
	}
}

// Receive takes master i's INFO reply (see pipeline.Receiver). A master
// that denies INFO (an ACL without it) tells nothing: it is not checked,
// and the observer is told so, once.
func (k *contacts) Receive(i int, reply any, err error) {
	info, err := redis.String(reply, err)
	var denied redis.Error
	if errors.As(err, &denied) {
		k.mu.Lock()
		first := !k.masters[i].denied
		k.masters[i].denied = true
		k.mu.Unlock()
		if obs := k.c.opts.observer; obs != nil && first {
			obs.Observe(observe.Event{Kind: observe.KindMaster, Node: i, Addr: k.c.masters[i].name,
				Err: fmt.Errorf("INFO refused: whether it is the same server as another master, and whether it can evict lock keys, is not checked: %w", err)})
		}
	}
	if err != nil {
		return
	}
	in := redisinfo.Parse(info)
	runID, _ := in.Get("run_id")
	role, _ := in.Get("role")
	replica := role == "slave" || role == "replica"
	maxmemory, _ := in.Int("maxmemory")
	policy, known := in.Get("maxmemory_policy")
	evicts := known && redisinfo.Evicts(policy, maxmemory)

	k.mu.Lock()
	m := &k.masters[i]
	m.runID = runID
	warn := evicts && (!m.evicts.Load() || m.policy != policy)
	m.policy, m.maxmemory = policy, maxmemory
	m.evicts.Store(evicts)
	demoted := replica && !m.replica.Load()
	m.replica.Store(replica)
	same, news := k.sameServer()
	k.mu.Unlock()

	obs := k.c.opts.observer
	if obs == nil {
		return
	}
	if warn {
		obs.Observe(observe.Event{Kind: observe.KindMaster, Node: i, Addr: k.c.masters[i].name, Err: k.evictable(i)})
	}
	if news && same != nil {
		obs.Observe(observe.Event{Kind: observe.KindMaster, Node: i, Addr: k.c.masters[i].name, Err: same})
	}
	if demoted {
		obs.Observe(observe.Event{Kind: observe.KindMaster, Node: i, Addr: k.c.masters[i].name, Err: errReplica})
	}
}

// errReplica is the answer of a master that is a replica.
var errReplica = fmt.Errorf("%w: it is a replica (INFO role:slave): its answers do not count", lockerr.ErrReadOnly)

// isReplica reports whether master i is known to be a replica.
func (k *contacts) isReplica(i int) bool { return k.masters[i].replica.Load() }

// readOnly records that master i answered a write with READONLY: it is a
// replica until a connection's INFO says otherwise.
func (k *contacts) readOnly(i int) { k.masters[i].replica.Store(true) }

// sameServer updates same from the run_ids known; it reports the error,
// and whether it changed. k.mu must be held.
func (k *contacts) sameServer() (error, bool) {
	var err error
	seen := make(map[string]int, len(k.masters))
	for j := range k.masters {
		id := k.masters[j].runID
		if id == "" {
			continue
		}
		if first, ok := seen[id]; ok {
			err = fmt.Errorf("%w: masters %d (%s) and %d (%s) have the same run_id %s",
				lockerr.ErrSameServer, first, k.c.masters[first].name, j, k.c.masters[j].name, id)
			break
		}
		seen[id] = j
	}
	old := k.same.Load()
	if err == nil {
		k.same.Store(nil)
		return nil, old != nil
	}
	if old != nil && (*old).Error() == err.Error() {
		return *old, false
	}
	k.same.Store(&err)
	return err, true
}

// sameServerErr is ErrSameServer naming two masters, or nil.
func (k *contacts) sameServerErr() error {
	if p := k.same.Load(); p != nil {
		return *p
	}
	return nil
}

// evicts reports whether master i's policy can evict lock keys.
func (k *contacts) evicts(i int) bool { return k.masters[i].evicts.Load() }

// evictable is the error of master i, whose policy can evict lock keys.
func (k *contacts) evictable(i int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := &k.masters[i]
	return fmt.Errorf("%w: maxmemory-policy %s with maxmemory %d", lockerr.ErrEvictable, m.policy, m.maxmemory)
}
