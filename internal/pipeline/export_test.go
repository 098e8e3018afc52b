package pipeline

// KillUnseen marks l's current connection failed, with err, as its reader
// does when a reply does not come, but leaves the Conn still holding it:
// the moment between the reader's giving up and its dropping the
// connection, when a writer may still find the connection and write on it.
// The reader stays in that moment until wake is called; then it drops the
// connection and exits. ok reports whether there was a connection.
func KillUnseen(l *Conn, err error) (wake func(), ok bool) {
	l.mu.Lock()
	w := l.wire
	l.mu.Unlock()
	if w == nil {
		return nil, false
	}
	w.kill(err)
	return func() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}, true
}
