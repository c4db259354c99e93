//go:build unix

package main

import (
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
)

// The signals that start and stop a profile in the profiling build.
var profileStart, profileStop os.Signal = syscall.SIGUSR1, syscall.SIGUSR2

// profileOnSignal is profileHook for the bare proxy, which is this program.
func profileOnSignal(dir string) {
	c := make(chan os.Signal, 4)
	signal.Notify(c, profileStart, profileStop)
	go func() {
		var cpu *os.File
		for s := range c {
			name, _ := os.ReadFile(filepath.Join(dir, "next"))
			base := filepath.Join(dir, string(name))
			if s == profileStart {
				cpu, _ = os.Create(base + ".cpu.prof")
				_ = pprof.StartCPUProfile(cpu)
				_ = os.WriteFile(base+".started", nil, 0o600)
				continue
			}
			pprof.StopCPUProfile()
			_ = cpu.Close()
			_ = os.WriteFile(base+".stopped", nil, 0o600)
		}
	}()
}
