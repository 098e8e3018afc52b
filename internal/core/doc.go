// Package core is the machinery both backends (redlock, memlock) share:
// the checks of keys and ttls and the one namespacing of keys (keys.go),
// the quorum, drift and validity formulas (quorum.go), the retry schedule
// a backend's Lock loop drives (Tries, retry.go), the waiting line of a
// process's callers per key (Line, line.go), the calls in flight that
// Destroy interrupts (InFlight), and the reporting of Extend and Unlock to
// an observer. What users see of it is declared in the public packages
// lock, lockerr and observe.
package core
