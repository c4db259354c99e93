package main

import (
	"runtime/debug"
	"testing"

	"go.uber.org/zap"
)

// TestStartGCPolicy: the tuner runs by default, and not when the operator
// set GOGC or GOMEMLIMIT or turned it off.
func TestStartGCPolicy(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	up := "GATEHOUSE_UPSTREAM=http://127.0.0.1:4502"
	tests := []struct {
		name string
		env  []string
		want bool
	}{
		{"default", []string{up}, true},
		{"operator's GOGC", []string{up, "GOGC=200"}, false},
		{"operator's GOMEMLIMIT", []string{up, "GOMEMLIMIT=256MiB"}, false},
		{"turned off", []string{up, "GATEHOUSE_GC_HEADROOM_MIB=0"}, false},
		{"other headroom", []string{up, "GATEHOUSE_GC_HEADROOM_MIB=128"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			tu := startGCPolicy(cfg, tt.env, zap.NewNop())
			if tu != nil {
				tu.Stop()
			}
			if got := tu != nil; got != tt.want {
				t.Errorf("tuner started = %v, want %v", got, tt.want)
			}
		})
	}
}
