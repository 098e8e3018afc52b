//go:build unix

package production

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lock "github.com/leverege/lock"
	"github.com/leverege/lock/internal/redistest"
)

// masterEvents keeps the KindMaster events an Observer is told, and logs
// every event with lock.SlogObserver at Info.
type masterEvents struct {
	mu     sync.Mutex
	events []lock.Event
	log    bytes.Buffer
	slog   lock.Observer
}

func newMasterEvents() *masterEvents {
	m := &masterEvents{}
	m.slog = lock.SlogObserver(slog.New(slog.NewTextHandler(&syncWriter{m: &m.mu, w: &m.log}, &slog.HandlerOptions{Level: slog.LevelInfo})))
	return m
}

func (m *masterEvents) Observe(e lock.Event) {
	m.slog.Observe(e)
	if e.Kind != lock.KindMaster {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

func (m *masterEvents) got() ([]lock.Event, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]lock.Event(nil), m.events...), m.log.String()
}

// syncWriter serialises writes to w under m.
type syncWriter struct {
	m *sync.Mutex
	w *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.m.Lock()
	defer s.m.Unlock()
	return s.w.Write(b)
}

// sameServerConfigs are three-master configurations of two TLS servers,
// as the lock's ACL user, in which the first server is listed twice:
// under another database, and under another name.
func sameServerConfigs(t *testing.T, ss []*redistest.Server, ca *redistest.CA, client *redistest.Cert) map[string][]object {
	t.Helper()
	conn := func(s *redistest.Server, more object) object {
		return with(object{"host": "127.0.0.1", "port": s.Port(), "username": aclUser, "password": aclPassword,
			"tls": object{"ca": ca.CertPEM, "cert": client.CertPEM, "key": client.KeyPEM}}, more)
	}
	return map[string][]object{
		"another db":   {conn(ss[0], nil), conn(ss[0], object{"db": 1}), conn(ss[1], nil)},
		"another name": {conn(ss[0], nil), conn(ss[0], object{"host": "localhost"}), conn(ss[1], nil)},
	}
}

// sameServerMasters starts two TLS masters with the default user off and
// the lock's user with the doc's rules for a db other than 0, and returns
// them with their CA and a client certificate.
func sameServerMasters(t *testing.T, rules []string) ([]*redistest.Server, *redistest.CA, *redistest.Cert) {
	t.Helper()
	ca := redistest.NewCA(t, "same-server-ca")
	ss := []*redistest.Server{
		redistest.StartServer(t, redistest.WithTLS(ca, redistest.ClientCertRequired), redistest.WithDefaultUserOff()),
		redistest.StartServer(t, redistest.WithTLS(ca, redistest.ClientCertRequired), redistest.WithDefaultUserOff()),
	}
	setUser(t, ss, rules)
	return ss, ca, ca.ClientCert(t, "locker")
}

// TestSameServer: a configuration that lists one server twice (under
// another db, or as 127.0.0.1 and localhost) among three masters is
// refused on every Lock, the first a new Locker makes included, with
// ErrSameServer naming both masters, after one attempt; the Observer is
// told with a KindMaster event, which SlogObserver logs at Warn.
func TestSameServer(t *testing.T) {
	doc := docRules(t)
	ss, ca, client := sameServerMasters(t, doc.rules(nil, withDB))
	for name, conns := range sameServerConfigs(t, ss, ca, client) {
		t.Run(name, func(t *testing.T) {
			flush(t, ss) // every db
			cfg := parseConfig(t, conns, scheduleOf10)
			first := fmt.Sprintf("masters 0 (%s) and 1 (%s)", cfg.Connections[0].Addr(), cfg.Connections[1].Addr())
			obs := newMasterEvents()
			l := create(t, cfg, docNamespace, obs)

			calls := []struct {
				name string
				call func() error
			}{
				{"the first LockNs(k)", func() error { _, err := l.LockNs(quick(t), "k", time.Second); return err }},
				{"LockNs(k) again", func() error { _, err := l.LockNs(quick(t), "k", time.Second); return err }},
				{"LockNs(other)", func() error { _, err := l.LockNs(quick(t), "other", time.Second); return err }},
				{"LockAllNs(a, b)", func() error { _, err := l.LockAllNs(quick(t), []string{"a", "b"}, time.Second); return err }},
			}
			for _, c := range calls {
				start := time.Now()
				err := c.call()
				took := time.Since(start)
				t.Logf("%s took %v: %v", c.name, took, err)
				require.ErrorIs(t, err, lock.ErrNotAcquired, "%s err = %v, want ErrNotAcquired", c.name, err)
				require.ErrorIs(t, err, lock.ErrSameServer, "%s err = %v, want ErrSameServer", c.name, err)
				assert.Contains(t, err.Error(), first, "%s: the error does not name both masters", c.name)
				assert.Equal(t, 1, lockError(t, err).Attempts, "%s: attempts, want 1: the configuration cannot change", c.name)
				assert.Less(t, took, 900*time.Millisecond, "%s took %v, want well under the 1s retry delay", c.name, took)
				neverNotHeld(t, err, c.name)
			}
			assert.Empty(t, allKeys(t, ss), "keys left behind (db 0)")
			for _, s := range ss {
				conn, err := s.Dial(t.Context())
				require.NoError(t, err)
				_, err = conn.Do("SELECT", 1)
				require.NoError(t, err)
				n, err := conn.Do("DBSIZE")
				conn.Close()
				require.NoError(t, err)
				assert.EqualValues(t, 0, n, "keys left behind in db 1 of %s", s.Addr())
			}

			events, logged := obs.got()
			told := false
			for _, e := range events {
				if assert.ErrorIs(t, e.Err, lock.ErrSameServer, "KindMaster event %+v", e) {
					told = true
					assert.Contains(t, []string{cfg.Connections[0].Addr(), cfg.Connections[1].Addr()}, e.Addr, "the event's master")
				}
			}
			assert.True(t, told, "the Observer was told nothing of the same server: %+v", events)
			var warned bool
			for line := range strings.Lines(logged) {
				if strings.Contains(line, "kind=master") {
					warned = true
					assert.Contains(t, line, "level=WARN", "SlogObserver's line")
					assert.Contains(t, line, lock.ErrSameServer.Error(), "SlogObserver's line")
					assert.Contains(t, line, first, "SlogObserver's line names both masters")
				}
			}
			assert.True(t, warned, "SlogObserver logged no KindMaster event:\n%s", logged)
		})
	}
}

// TestSameServerWithoutINFO: the same check rests on INFO, which the
// library sends on every new connection; a user whose rules lack +info
// gets no answer to it, and then one server listed twice is not refused:
// its two votes make a quorum of three masters. The doc says so (ACL
// users); this pins it, and that the Observer is told, once per master,
// that the check could not be made (a KindMaster event, logged at Warn).
func TestSameServerWithoutINFO(t *testing.T) {
	doc := docRules(t)
	ss, ca, client := sameServerMasters(t, without(t, doc.rules(nil, withDB), "+info"))
	conns := sameServerConfigs(t, ss, ca, client)["another name"]
	obs := newMasterEvents()
	l := create(t, parseConfig(t, conns, scheduleOf10), docNamespace, obs)
	lk, err := l.LockNs(quick(t), "k", time.Second)
	require.NoError(t, err, "LockNs(%q): a user without INFO, one server listed twice", "k")
	require.NoError(t, lk.Unlock(quick(t)))
	events, logged := obs.got()
	assert.Len(t, events, len(conns), "KindMaster events: one per master, saying INFO was refused: %+v", events)
	for _, e := range events {
		assert.ErrorContains(t, e.Err, "INFO refused", "master %d's event", e.Node)
		assert.NotErrorIs(t, e.Err, lock.ErrSameServer)
	}
	assert.Contains(t, logged, "level=WARN", "SlogObserver's lines")
	t.Logf("LockNs succeeded on masters 0 and 1, which are one server (%s): not detected without INFO, and the Observer was told", ss[0].Addr())
}
