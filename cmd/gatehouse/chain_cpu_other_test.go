//go:build !unix

package main

import (
	"testing"
	"time"
)

// processCPU is not measured here (no getrusage): 0.
func processCPU(*testing.B) time.Duration { return 0 }

// reportCPU reports nothing without processCPU.
func reportCPU(*testing.B, time.Duration) {}
