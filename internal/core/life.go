package core

import "sync"

// Life lets Destroy interrupt the calls in flight, wait for them to
// finish, and refuse new ones. The zero Life is ready to use.
type Life struct {
	mu        sync.RWMutex
	destroyed bool
	wg        sync.WaitGroup
	once      sync.Once
	stop      chan struct{} // closed when Destroy starts
}

func (l *Life) init() {
	l.once.Do(func() { l.stop = make(chan struct{}) })
}

// Enter registers a call; Exit must be called when it returns. After
// Destroy, Enter fails with ErrDestroyed. A call that waits (Lock) also
// watches Done, to be interrupted.
func (l *Life) Enter() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.destroyed {
		return ErrDestroyed
	}
	l.wg.Add(1)
	return nil
}

// Exit ends a call that Enter registered.
func (l *Life) Exit() { l.wg.Done() }

// Done is closed when Destroy starts.
func (l *Life) Done() <-chan struct{} {
	l.init()
	return l.stop
}

// Destroy refuses new calls, interrupts the ones in flight (Done closes)
// and waits for them. It reports whether this was the first call.
func (l *Life) Destroy() bool {
	l.init()
	l.mu.Lock()
	first := !l.destroyed
	l.destroyed = true
	l.mu.Unlock()
	if first {
		close(l.stop)
	}
	l.wg.Wait()
	return first
}
