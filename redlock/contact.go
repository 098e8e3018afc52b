package redlock

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	// replica is why the master is taken for a replica (INFO said
	// role:slave, or it answered READONLY), nil while it is not; the next
	// connection's INFO says again.
	replica atomic.Pointer[error]
	retired time.Time // when its connection was last given up for being a replica
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
	demoted := replica && m.replica.Load() == nil
	if replica {
		m.replica.Store(&errRoleReplica)
	} else {
		m.replica.Store(nil)
	}
	same, news := k.sameServer()
	k.mu.Unlock()
	if replica {
		// It may be a master again soon (an endpoint that follows the
		// failover): the next request asks on a new connection.
		k.retire(i)
	}

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
		obs.Observe(observe.Event{Kind: observe.KindMaster, Node: i, Addr: k.c.masters[i].name, Err: errRoleReplica})
	}
}

// The answers of a master taken for a replica, by the evidence.
var (
	errRoleReplica = fmt.Errorf("%w: it is a replica (INFO role:slave): its answers do not count", lockerr.ErrReadOnly)
	errAnsweredRO  = fmt.Errorf("%w: it answered READONLY, as a replica does: its answers do not count", lockerr.ErrReadOnly)
)

// readOnly records that master i answered a write with READONLY: it is
// taken for a replica until a connection's INFO says otherwise, and its
// connection is given up so that the next request asks again. The
// observer is told when this is news.
func (k *contacts) readOnly(i int) {
	m := &k.masters[i]
	if m.replica.CompareAndSwap(nil, &errAnsweredRO) {
		if obs := k.c.opts.observer; obs != nil {
			obs.Observe(observe.Event{Kind: observe.KindMaster, Node: i, Addr: k.c.masters[i].name, Err: errAnsweredRO})
		}
	}
	k.retire(i)
}

// asMaster is master i's answer err (nil for yes) as a vote, knowing what
// the Client knows of its role. A yes to an acquisition, an extension or a
// release is a write, which a replica refuses: a yes shows a master, and
// clears what was thought (a fencing write-back's yes may write nothing,
// when the counter there is past the token already, which is all it
// asks). A replica answers a request that writes nothing (an Extend
// or Unlock of a key it lacks, a refusal) as a master would: a master
// taken for a replica gets, for any other answer, the reason why, and its
// connection is given up (at most once per retireEvery) so that a new
// one's INFO says again.
func (k *contacts) asMaster(i int, err error) error {
	m := &k.masters[i]
	if err == nil {
		m.replica.Store(nil)
		return nil
	}
	if why := m.replica.Load(); why != nil {
		k.retire(i)
		return *why
	}
	return err
}

// retireEvery is the least time between two connections to a master given
// up for its being a replica: while an endpoint leads to one, the Client
// asks it again that often, not on every request.
const retireEvery = time.Second

// retire gives master i's connection up, at most once per retireEvery.
func (k *contacts) retire(i int) {
	k.mu.Lock()
	m := &k.masters[i]
	due := time.Since(m.retired) >= retireEvery
	if due {
		m.retired = time.Now()
	}
	k.mu.Unlock()
	if due {
		k.c.masters[i].conn.Retire()
	}
}

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
