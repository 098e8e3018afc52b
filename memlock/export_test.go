package memlock

// Len reports how many entries m keeps, expired ones included.
func Len(m *Locker) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}
