//go:build !unix

package proctree

func killGroup(int, bool) {}
