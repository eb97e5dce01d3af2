// Package devstack starts dsrflow's processes for tests, benchmarks and the
// walkthrough check: the Temporal dev server built by `make tools`
// (bin/temporal, never a download), and the worker, API and CLI binaries
// built by `make build`. Every process it starts is stopped by Stop.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"go.temporal.io/sdk/client"
)

// RepoRoot finds the checkout root (the directory holding go.mod) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devstack: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Bin returns the path of a binary built by `make tools` or `make build`:
// $DSR_BIN/name, else <repo>/bin/name. It fails if the file is missing.
func Bin(name string) (string, error) {
	dir := os.Getenv("DSR_BIN")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin")
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("devstack: %s is missing: run `make tools build` first", path)
	}
	return path, nil
}

// FreeAddr returns a loopback address with a port nobody listens on right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Process is a child process whose output goes to a log file.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	once    sync.Once
}

// Start runs bin with args and env (added to a minimal base environment),
// logging to dir/<name>.log.
func Start(name, dir, bin string, env []string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(BaseEnv(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("devstack: starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// BaseEnv keeps only what a child needs from the test's own environment, so a
// developer's DSR_*, MIXPANEL_* or TEMPORAL_* settings cannot leak into a test stack.
func BaseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "TMPDIR", "GOCOVERDIR":
			out = append(out, kv)
		}
	}
	return out
}

// EnvValue returns the value of key in a KEY=VALUE list ("" when absent).
func EnvValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *Process) Stop() {
	p.once.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// Kill ends the process with SIGKILL at once, as a crash would.
func (p *Process) Kill() {
	p.once.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
}

// PeakRSS returns the process's peak resident memory (VmHWM) in bytes, or 0
// when it cannot be read (the process ended, or no /proc).
func (p *Process) PeakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb * 1024
		}
	}
	return 0
}

// Log returns the process's output so far (for test failure messages).
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Temporal is a running dev server.
type Temporal struct {
	Address string
	UIAddr  string
	proc    *Process
}

// TemporalOptions configure StartTemporal.
type TemporalOptions struct {
	// Dir holds the SQLite file and the log.
	Dir string
	// UI turns on the Web UI (headless otherwise).
	UI bool
	// DynamicConfig adds --dynamic-config-value KEY=VALUE pairs.
	DynamicConfig []string
	// BareNamespace leaves dsrflow's search attributes unregistered, as on a fresh server.
	BareNamespace bool
}

// StartTemporal starts bin/temporal's dev server on free ports with the SQLite
// pragmas dsrflow measured as fastest and every search attribute registered,
// and waits until it answers.
//
// A port found free can be taken by another process before the server binds
// it (tests start many servers at once), and the server also binds ports
// derived from it: a server that exits while starting is started again on
// other ports, up to three times.
func StartTemporal(ctx context.Context, o TemporalOptions) (*Temporal, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var t *Temporal
		if t, err = startTemporal(ctx, o); err == nil {
			return t, nil
		}
		if !errors.Is(err, errExited) {
			return nil, err
		}
	}
	return nil, err
}

// errExited marks a dev server that exited before it answered.
var errExited = errors.New("the process exited")

// startTemporal is one attempt of StartTemporal.
func startTemporal(ctx context.Context, o TemporalOptions) (*Temporal, error) {
	bin, err := Bin("temporal")
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"server", "start-dev", "--ip", host, "--port", port,
		"--db-filename", filepath.Join(o.Dir, "temporal.db"),
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
		"--log-level", "error"}
	t := &Temporal{Address: addr}
	if o.UI {
		ui, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		_, uiPort, _ := net.SplitHostPort(ui)
		args = append(args, "--ui-port", uiPort)
		t.UIAddr = ui
	} else {
		args = append(args, "--headless")
	}
	for _, kv := range o.DynamicConfig {
		args = append(args, "--dynamic-config-value", kv)
	}
	if !o.BareNamespace {
		for _, sa := range SearchAttributeFlags() {
			args = append(args, "--search-attribute", sa)
		}
	}
	if t.proc, err = Start("temporal", o.Dir, bin, nil, args...); err != nil {
		return nil, err
	}
	if err := t.waitReady(ctx); err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

// SearchAttributeFlags returns dsrflow's search attributes as NAME=Type values of
// `temporal server start-dev --search-attribute`, sorted.
func SearchAttributeFlags() []string {
	var out []string
	for name, typ := range dsr.SearchAttributes() {
		// INDEXED_VALUE_TYPE_KEYWORD -> Keyword
		kind := strings.TrimPrefix(typ.String(), "INDEXED_VALUE_TYPE_")
		out = append(out, name+"="+strings.ToUpper(kind[:1])+strings.ToLower(kind[1:]))
	}
	sort.Strings(out)
	return out
}

func (t *Temporal) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := client.Dial(client.Options{HostPort: t.Address})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			c.Close()
			if err == nil {
				return nil
			}
		}
		if t.proc.Exited() {
			return fmt.Errorf("devstack: the Temporal dev server did not start (%w): %v\n%s", errExited, err, tail(t.proc.Log(), 2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devstack: the Temporal dev server did not start: %v\n%s", err, tail(t.proc.Log(), 2000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops the dev server.
func (t *Temporal) Stop() {
	if t.proc != nil {
		t.proc.Stop()
	}
}

// WaitHTTP polls url until it answers 200 or the timeout passes.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, p *Process) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := probeClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if (p != nil && p.Exited()) || time.Now().After(deadline) {
			msg := ""
			if p != nil {
				msg = tail(p.Log(), 2000)
			}
			return fmt.Errorf("devstack: %s did not become ready: %v\n%s", url, err, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var probeClient = &http.Client{Timeout: 2 * time.Second}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
