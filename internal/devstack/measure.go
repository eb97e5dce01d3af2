package devstack

import (
	"fmt"
	"os"
	"strings"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// CPUSeconds returns the CPU time (user and system) the process has used so
// far, or 0 when it cannot be read (the process ended, or no /proc).
func (p *Process) CPUSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(fields[11], &utime) // field 14 of the line
	fmt.Sscan(fields[12], &stime) // field 15
	return float64(utime+stime) / clockTicks
}

// Process returns the dev server's process (nil for an external Temporal).
func (t *Temporal) Process() *Process { return t.proc }
