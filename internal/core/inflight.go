package core

import (
	"sync"

	"github.com/leverege/lock/lockerr"
)

// InFlight tracks the calls a Locker has in flight, so that Destroy can
// interrupt them, wait for them to finish, and refuse new ones. The zero
// InFlight is ready to use.
type InFlight struct {
	mu      sync.RWMutex
	closed  bool
	wg      sync.WaitGroup
	once    sync.Once
	closing chan struct{} // closed when Close starts
}

func (f *InFlight) init() {
	f.once.Do(func() { f.closing = make(chan struct{}) })
}

// Enter registers a call; Exit must be called when it returns. Once Close
// has started, Enter fails with lockerr.ErrDestroyed. A call that waits (Lock)
// also watches Closing, to be interrupted.
func (f *InFlight) Enter() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return lockerr.ErrDestroyed
	}
	f.wg.Add(1)
	return nil
}

// Exit ends a call that Enter registered.
func (f *InFlight) Exit() { f.wg.Done() }

// Closing is closed when Close starts.
func (f *InFlight) Closing() <-chan struct{} {
	f.init()
	return f.closing
}

// Close refuses new calls, interrupts the ones in flight (Closing is
// closed) and waits for them. It reports whether this was the first call.
func (f *InFlight) Close() bool {
	f.init()
	f.mu.Lock()
	first := !f.closed
	f.closed = true
	f.mu.Unlock()
	if first {
		close(f.closing)
	}
	f.wg.Wait()
	return first
}
