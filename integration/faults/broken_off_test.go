//go:build !lockbroken

package faults

import "github.com/leverege/lock/redlock"

// brokenBuilt: the broken variants are not built in; TestMain refuses to
// run the suite without them (go test -tags lockbroken), so that the tests
// that show each variant caught are never skipped.
const brokenBuilt = false

func (v variant) option() redlock.Option { panic("built without -tags lockbroken") }
