//go:build !unix

package main

import "io"

// Without process groups or signals there is no guardian: if lock dies,
// the command keeps running without the lock.
type guard struct{ pgid int }

func newGuard(bool, io.Writer) (*guard, error) { return &guard{}, nil }

func (*guard) started(int) {}
func (*guard) dismiss()    {}
func (*guard) close()      {}
