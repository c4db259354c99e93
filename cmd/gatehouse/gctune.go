package main

import (
	"strings"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/cmd/runtime/gctune"
)

// startGCPolicy starts the GC tuner (see gctune) that
// GATEHOUSE_GC_HEADROOM_MIB asks for, unless it is 0 or the operator set
// GOGC or GOMEMLIMIT, who then takes over; it returns nil when it started
// none.
func startGCPolicy(cfg *config, environ []string, log *zap.Logger) *gctune.Tuner {
	for _, kv := range environ {
		if name, _, _ := strings.Cut(kv, "="); name == "GOGC" || name == "GOMEMLIMIT" {
			log.Info("garbage collector left as configured", zap.String("set", name))
			return nil
		}
	}
	if cfg.GCHeadroomMiB <= 0 {
		return nil
	}
	return gctune.Start(uint64(cfg.GCHeadroomMiB) << 20)
}
