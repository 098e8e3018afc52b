package redistest

import (
	"fmt"
	"net"
	"sync"
	"time"
)

const (
	dialConnectTimeout = 2 * time.Second
	dialIOTimeout      = 3 * time.Second
	portAttempts       = 8 // starts tried on other ports when one was taken meanwhile
)

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{} // ports held by live servers of this process
)

// ReservePort picks a free port on 127.0.0.1 that no live server of this
// process holds (the container harness of the integration tests shares the
// reservations, so containers and processes never take the same port).
// ReleasePort gives it back.
func ReservePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var lastErr error
	for range 100 {
		port, err := FreePort()
		if err != nil {
			lastErr = err
			continue
		}
		if !portsUsed[port] {
			portsUsed[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("redistest: no free port on 127.0.0.1: %v", lastErr)
}

// FreePort asks the kernel for a port that is free right now on
// 127.0.0.1. A variable so that a test can hand out a taken port.
var FreePort = func() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// ReleasePort gives back a port that ReservePort handed out.
func ReleasePort(port int) {
	portMu.Lock()
	delete(portsUsed, port)
	portMu.Unlock()
}

// State is where a server (or a container) is in its life.
type State int

// The states.
const (
	StateRunning    State = iota
	StateStopped          // Stop or Kill
	StatePaused           // SIGSTOP (or docker pause)
	StateTerminated       // Close (or Terminate): for good
)

// String names the state.
func (s State) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateStopped:
		return "stopped"
	case StatePaused:
		return "paused"
	case StateTerminated:
		return "terminated"
	}
	return fmt.Sprintf("state(%d)", int(s))
}
