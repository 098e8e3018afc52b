package redlock

// Bounded is bounded, for the watcher's writes.
var Bounded = bounded
