package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownerFile, in a cluster's directory, holds the PID of the process that started the cluster.
const ownerFile = "owner.pid"

// serverProcs returns the postmaster and its direct children (backends and auxiliary
// processes), read from /proc. Without /proc it returns just the postmaster.
func (c *Cluster) serverProcs() []int {
	if c.pid == 0 {
		return nil
	}
	procs := []int{c.pid}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return procs
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parentOf(pid) == c.pid {
			procs = append(procs, pid)
		}
	}
	return procs
}

// parentOf returns pid's parent PID from /proc/<pid>/stat, or 0 if unknown.
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Format: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err) && !errors.Is(err, syscall.ESRCH)
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

// waitGone polls until none of pids is alive or d passes, and returns those still alive.
func waitGone(pids []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reapStale stops and removes clusters left in the temp directory by test processes that died
// without calling Stop (a test binary killed by -timeout, say). It only touches a cluster whose
// owner process is gone and whose postmaster, if any, is a live postgres binary.
func reapStale(binDir string, runAs *syscall.Credential) {
	dirs, _ := filepath.Glob(filepath.Join(baseDir(runAs != nil), "pgtest-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner <= 0 || alive(owner) {
			continue
		}
		data := filepath.Join(dir, "data")
		if pid, err := postmasterPID(data); err == nil && alive(pid) {
			exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
			if filepath.Base(exe) != "postgres" {
				continue // a recycled PID, or not ours to judge: leave it
			}
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			runTool(ctx, binDir, dir, runAs, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
			cancel()
			// pg_ctl -w returns once postmaster.pid is gone, which the postmaster removes
			// shortly before it exits.
			if len(waitGone([]int{pid}, 10*time.Second)) > 0 {
				continue
			}
		}
		os.RemoveAll(dir)
	}
}
