//go:build lockbroken

package redlock_test

import "github.com/leverege/lock/redlock"

// brokenBuilt: the broken variants are built in (go test -tags lockbroken).
const brokenBuilt = true

// silent is an option whose Client does not announce its releases.
func silent() redlock.Option { return redlock.WithBroken(redlock.Broken{Silent: true}) }
