package core

import (
	"context"
	"sync"
)

// Life lets Destroy interrupt the calls in flight, wait for them to
// finish, and refuse new ones. The zero
// Life is ready to use.
type Life struct {
	mu        sync.RWMutex
	destroyed bool
	wg        sync.WaitGroup
	once      sync.Once
	ctx       context.Context
	cancel    context.CancelCauseFunc
}

func (l *Life) init() {
	l.once.Do(func() { l.ctx, l.cancel = context.WithCancelCause(context.Background()) })
}

// Enter registers a call that needs no interruption; exit must be called
// when it returns. After Destroy, Enter fails with ErrDestroyed.
func (l *Life) Enter() (exit func(), _ error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.destroyed {
		return nil, ErrDestroyed
	}
	l.wg.Add(1)
	return l.wg.Done, nil
}

// Begin registers a call. It returns a context that ends with ctx or, with
// cause ErrDestroyed, when Destroy starts; done must be called when the call
// returns. After Destroy, Begin fails with ErrDestroyed.
func (l *Life) Begin(ctx context.Context) (_ context.Context, done func(), _ error) {
	l.init()
	exit, err := l.Enter()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.ctx, func() { cancel(ErrDestroyed) })
	return ctx, func() {
		stop()
		cancel(nil)
		exit()
	}, nil
}

// Destroy refuses new calls, interrupts the ones in flight and waits for
// them. It reports whether this was the first call.
func (l *Life) Destroy() bool {
	l.init()
	l.mu.Lock()
	first := !l.destroyed
	l.destroyed = true
	l.mu.Unlock()
	l.cancel(ErrDestroyed)
	l.wg.Wait()
	return first
}
