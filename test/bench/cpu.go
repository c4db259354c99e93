package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTick is Linux's USER_HZ, the unit of /proc's CPU times; it is 100
// on every architecture Go supports.
const clockTick = 100

// cpuSnapshot is the CPU time used so far by the machine and by each
// process taking part in a run, in clock ticks.
type cpuSnapshot struct {
	busy  int64 // all CPUs, not idle
	self  int64 // this process (upstream, IMS emulator, Go load generator) and its reaped children (wrk)
	procs map[int]int64
}

func takeCPUSnapshot(pids ...int) cpuSnapshot {
	s := cpuSnapshot{busy: machineBusy(), self: processCPU("self", true), procs: map[int]int64{}}
	for _, pid := range pids {
		s.procs[pid] = processCPU(strconv.Itoa(pid), false)
	}
	return s
}

// cpuUsage is how the CPU time of one run was spent, in µs per request
// completed (the proxies) and in percent of the machine (everything else).
type cpuUsage struct {
	ProxyMicros  float64 `json:"proxy_cpu_us_per_request"`    // the proxy under load
	DriverMicros float64 `json:"driver_cpu_us_per_request"`   // load generator and upstream
	ForeignPct   float64 `json:"other_processes_cpu_percent"` // of all CPUs: processes not part of the benchmark
}

// usage compares two snapshots around a run of n requests against the proxy pid.
func usage(before, after cpuSnapshot, pid int, n int64, seconds float64, cpus int) cpuUsage {
	if n <= 0 || before.busy < 0 || after.busy < 0 {
		return cpuUsage{}
	}
	tickMicros := 1e6 / float64(clockTick)
	proxy := after.procs[pid] - before.procs[pid]
	driver := after.self - before.self
	ours := driver
	for p, t := range after.procs {
		ours += t - before.procs[p]
	}
	foreign := after.busy - before.busy - ours
	u := cpuUsage{
		ProxyMicros:  float64(proxy) * tickMicros / float64(n),
		DriverMicros: float64(driver) * tickMicros / float64(n),
	}
	if seconds > 0 && cpus > 0 {
		u.ForeignPct = max(0, float64(foreign)/clockTick/seconds/float64(cpus)*100)
	}
	return u
}

// machineBusy is the non-idle time of all CPUs, from /proc/stat; -1 if
// unknown.
func machineBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return -1
	}
	var total, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		switch i {
		case 3, 4: // idle, iowait
			idle += n
		case 8, 9: // guest time is already counted in user time
			continue
		}
		total += n
	}
	return total - idle
}

// processCPU is the user and system time of /proc/<pid>, with that of its
// reaped children if asked; -1 if unknown.
func processCPU(pid string, children bool) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%s/stat", pid))
	if err != nil {
		return -1
	}
	// The command name, field 2, may hold spaces: fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return -1
	}
	field := func(n int) int64 { v, _ := strconv.ParseInt(f[n-3], 10, 64); return v }
	t := field(14) + field(15) // utime, stime
	if children {
		t += field(16) + field(17) // cutime, cstime
	}
	return t
}
