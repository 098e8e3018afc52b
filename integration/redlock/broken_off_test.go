//go:build !lockbroken

package redlock_test

import "github.com/leverege/lock/redlock"

// brokenBuilt: the broken variants are not built in; TestMain refuses to
// run without them (go test -tags lockbroken), so that the tests that show
// each broken variant caught are never skipped.
const brokenBuilt = false

func silent() redlock.Option { panic("built without -tags lockbroken") }
