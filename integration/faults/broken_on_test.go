//go:build lockbroken

package faults

import "github.com/leverege/lock/redlock"

// brokenBuilt: the broken variants are built in (go test -tags lockbroken).
const brokenBuilt = true

func (v variant) option() redlock.Option { return redlock.WithBroken(redlock.Broken(v)) }
