//go:build !lockbroken

package redlock

// broken is empty in every normal build: the deliberately broken variants
// of the algorithm, which the safety suite shows its checker catching,
// exist only under the build tag lockbroken (broken.go). These methods are
// constants that the compiler folds away.
type broken struct{}

func (broken) halfQuorum() bool               { return false }
func (broken) noDrift() bool                  { return false }
func (broken) lateStart() bool                { return false }
func (broken) silent() bool                   { return false }
func (broken) release(keySet) (request, bool) { return nil, false }
