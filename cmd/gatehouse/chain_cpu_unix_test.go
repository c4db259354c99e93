//go:build unix

package main

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time the process has used so far. Per request
// (reportCPU), it measures the work done rather than the wall time,
// which on a machine shared with other jobs swings by half.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU time per request since start as cpu-ns/op: the
// whole process's (client, Gatehouse and upstream alike; the client and
// upstream are the same on both sides of a comparison).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}
