package walkthrough_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	composecli "github.com/compose-spec/compose-go/v2/cli"

	"github.com/dsrflow/dsrflow/internal/devstack"
)

// The walkthrough's first command, exactly as the banner and the README show it.
const submitCommand = "bin/dsr submit --regulation gdpr --type erasure --identity controller_customer_id=user-42 --skip-waiting-period"

const (
	bannerStart   = "dsrflow dev stack is ready"
	bannerRule    = "================"
	startTimeout  = 2 * time.Minute
	finishTimeout = 90 * time.Second
	stopTimeout   = 30 * time.Second
)

// TestWalkthrough runs `make dev`'s script and then the walkthrough's commands
// against it, stops it with Ctrl-C, and starts it again on the same data.
func TestWalkthrough(t *testing.T) {
	root := repoRoot(t)
	data := t.TempDir()
	ports := freePorts(t, 5)
	began := time.Now()

	// --- make dev
	dev := startDev(t, root, data, ports, nil)
	b := dev.waitBanner(t)
	t.Logf("stack ready after %s", time.Since(began).Round(100*time.Millisecond))
	if !strings.Contains(dev.output(), "generated dev keys in "+data) {
		t.Errorf("the first run did not say it generated the dev keys:\n%s", dev.output())
	}
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("DEV_DATA mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	for _, f := range []string{"signing-key.pem", "signing-cert.pem", "dsrflow.db", "temporal.db", "logs/worker.log"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	ui := b.url(t, "Temporal Web UI")
	api := b.url(t, "OpenDSR API")
	tasksURL := b.url(t, "Mixpanel emulator")
	if want := fmt.Sprintf("http://127.0.0.1:%d", ports[1]); ui != want {
		t.Errorf("banner Web UI = %q, want %q", ui, want)
	}
	if !strings.HasSuffix(tasksURL, "/_emulator/tasks") {
		t.Errorf("banner emulator URL = %q, want its /_emulator/tasks", tasksURL)
	}
	token := b.field(t, `token: (\S+)`)

	// The CLI reaches this stack with the exports the banner prints (the
	// ports and data directory differ from the defaults here).
	cliEnv := b.exports(t)
	if got, want := devstack.EnvValue(cliEnv, "TEMPORAL_ADDRESS"), fmt.Sprintf("127.0.0.1:%d", ports[0]); got != want {
		t.Errorf("banner exports TEMPORAL_ADDRESS=%q, want %q", got, want)
	}
	if got, want := devstack.EnvValue(cliEnv, "DSR_DB"), filepath.Join(data, "dsrflow.db"); got != want {
		t.Errorf("banner exports DSR_DB=%q, want %q", got, want)
	}
	cli := func(ctx context.Context, command string) (string, error) {
		return runCLI(ctx, root, cliEnv, command)
	}

	// --- bin/dsr submit ..., then bin/dsr watch <id>
	if !b.hasLine(submitCommand) {
		t.Fatalf("the banner does not show %q:\n%s", submitCommand, b.text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := cli(ctx, submitCommand)
	cancel()
	if err != nil {
		t.Fatalf("%s: %v\n%s\n%s", submitCommand, err, out, dev.logs())
	}
	m := regexp.MustCompile(`(?m)^submitted ([0-9a-f-]{36}) \(gdpr erasure\) for controller dev$`).FindStringSubmatch(out)
	if m == nil {
		if strings.HasPrefix(out, "already submitted ") {
			t.Fatalf("a new request was reported as already submitted (the race in internal/requests.Submit: "+
				"the workflow wrote its ledger row before the intake did):\n%s", out)
		}
		t.Fatalf("no request id in the output of %s:\n%s", submitCommand, out)
	}
	id := m[1]
	if !b.hasLine("bin/dsr watch <the request id it printed>") || !strings.Contains(out, "dsr watch "+id) {
		t.Errorf("the banner or submit's output does not point at `bin/dsr watch %s`:\n%s", id, out)
	}
	watchStart := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), finishTimeout)
	out, err = cli(ctx, "bin/dsr watch "+id)
	cancel()
	if err != nil {
		t.Fatalf("bin/dsr watch %s: %v\n%s\n%s", id, err, out, dev.logs())
	}
	if !strings.Contains(out, "completed") {
		t.Fatalf("bin/dsr watch ended without completing:\n%s", out)
	}
	t.Logf("request completed %s after submission:\n%s", time.Since(watchStart).Round(100*time.Millisecond), out)

	// --- the emulator's task list
	var tasks []struct {
		ID          string   `json:"id"`
		Status      string   `json:"status"`
		DistinctIDs []string `json:"distinct_ids"`
	}
	getJSON(t, tasksURL, "", &tasks)
	found := false
	for _, task := range tasks {
		found = found || task.Status == "SUCCESS" && slices.Contains(task.DistinctIDs, "user-42")
	}
	if !found {
		t.Errorf("%s lists no SUCCESS task for user-42: %+v", tasksURL, tasks)
	}

	// --- the Web UI: the page, and the workflow it shows
	if code, body := get(t, ui+"/", ""); code != http.StatusOK {
		t.Errorf("GET %s: %d %.200s", ui, code, body)
	}
	wfURL := ui + "/api/v1/namespaces/default/workflows/" + strings.ReplaceAll("dsr/dev/"+id, "/", "%2F")
	eventually(t, 30*time.Second, func() error {
		var wf struct {
			Info struct {
				Status string `json:"status"`
			} `json:"workflowExecutionInfo"`
		}
		getJSON(t, wfURL, "", &wf)
		if wf.Info.Status != "WORKFLOW_EXECUTION_STATUS_COMPLETED" {
			return fmt.Errorf("the Web UI shows workflow dsr/dev/%s as %q", id, wf.Info.Status)
		}
		return nil
	})

	checkWebUICodec(t, ui, api, id)
	// The Web UI's Current Details of the forwarded request, with working links.
	checkCurrentDetails(t, devstack.EnvValue(cliEnv, "TEMPORAL_ADDRESS"), filepath.Join(data, "encryption-keys"), ui, "dsr/dev/"+id)

	// --- the README's own code blocks, as written
	readmeAddr := stackAddresses{api: api, ui: ui, emulator: strings.TrimSuffix(tasksURL, "/_emulator/tasks")}
	checkReadmeOutputs(t, runReadmeBlocks(t, root, cliEnv, readmeAddr))
	checkSavedQueries(t, root, ui, api, token)

	// --- the same over HTTP: what the banner's curl lines send, with net/http
	httpID := newUUID(t)
	code, body := post(t, api+"/v1/requests", token, erasureBody(httpID))
	if code != http.StatusCreated || !strings.Contains(body, `"subject_request_id":"`+httpID+`"`) {
		t.Fatalf("POST /v1/requests: %d %s", code, body)
	}
	ids := []string{httpID}
	// ... and the banner's curl lines themselves, where curl is installed.
	if curlID, ok := runBannerCurl(t, b); ok {
		ids = append(ids, curlID)
	}
	for _, rid := range ids {
		eventually(t, finishTimeout, func() error {
			var st struct {
				Status string `json:"request_status"`
			}
			if code := getJSON(t, api+"/v1/requests/"+rid, token, &st); code != http.StatusOK || st.Status != "completed" {
				return fmt.Errorf("GET /v1/requests/%s: %d %q", rid, code, st.Status)
			}
			return nil
		})
	}

	// --- Ctrl-C stops everything
	dev.interrupt(t, ports)
	t.Logf("first run done after %s", time.Since(began).Round(100*time.Millisecond))

	// --- a second make dev keeps the first one's data
	dev2 := startDev(t, root, data, ports, nil)
	dev2.waitBanner(t)
	if strings.Contains(dev2.output(), "generated dev keys") {
		t.Errorf("the second run generated new keys:\n%s", dev2.output())
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err = cli(ctx, "bin/dsr status "+id)
	if err != nil || !regexp.MustCompile(`(?m)^status\s+completed`).MatchString(out) {
		t.Errorf("bin/dsr status %s after a restart: %v\n%s", id, err, out)
	}
	// Temporal's own database survived too: visibility still lists the request.
	out, err = cli(ctx, "bin/dsr list --status completed")
	if err != nil || !strings.Contains(out, id) {
		t.Errorf("bin/dsr list --status completed after a restart: %v\n%s", err, out)
	}
	var st struct {
		Status string `json:"request_status"`
	}
	if code := getJSON(t, api+"/v1/requests/"+httpID, token, &st); code != http.StatusOK || st.Status != "completed" {
		t.Errorf("GET /v1/requests/%s after a restart: %d %q", httpID, code, st.Status)
	}
	dev2.interrupt(t, ports)
	t.Logf("walkthrough done in %s", time.Since(began).Round(100*time.Millisecond))
}

// TestDevPortInUse: a port already taken stops dev.sh before it starts anything.
func TestDevPortInUse(t *testing.T) {
	root := repoRoot(t)
	data := t.TempDir()
	ports := freePorts(t, 5)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dev := startDev(t, root, data, ports, nil)
	code := dev.wait(t, 30*time.Second)
	want := fmt.Sprintf("port %d on 127.0.0.1 is in use (DEV_API_PORT)", ports[2])
	if code == 0 || !strings.Contains(dev.output(), want) {
		t.Errorf("exit code %d, want non-zero and %q in:\n%s", code, want, dev.output())
	}
	if _, err := os.Stat(filepath.Join(data, "logs")); err == nil {
		t.Errorf("dev.sh started something before finding the port taken")
	}
}

// TestDevStartupFailure: a process that dies at start-up stops the whole stack
// with a non-zero exit and the end of its log.
func TestDevStartupFailure(t *testing.T) {
	root := repoRoot(t)
	data := t.TempDir()
	ports := freePorts(t, 5)
	dev := startDev(t, root, data, ports, []string{"DSR_BATCH_MAX_WAIT=soon"})
	code := dev.wait(t, startTimeout)
	out := dev.output()
	if code == 0 || !strings.Contains(out, "worker exited") || !strings.Contains(out, "DSR_BATCH_MAX_WAIT") {
		t.Errorf("exit code %d; want non-zero, \"worker exited\" and the worker's error in:\n%s", code, out)
	}
	assertStopped(t, data, ports)
}

// TestDevScriptSearchAttributes: dev.sh registers exactly the search
// attributes the workflows use.
func TestDevScriptSearchAttributes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "dev.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`--search-attribute (\w+=\w+)`).FindAllStringSubmatch(string(b), -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	if want := devstack.SearchAttributeFlags(); !slices.Equal(got, want) {
		t.Errorf("scripts/dev.sh registers %v, the workflows use %v", got, want)
	}
}

// checkWebUICodec checks that the Web UI can show the workflow's payloads,
// which are encrypted in Temporal: its settings name the API's codec
// endpoint, and that endpoint decodes the workflow input for a browser on the
// Web UI's origin, as the UI does.
func checkWebUICodec(t *testing.T, ui, api, id string) {
	t.Helper()
	var settings struct {
		Codec struct {
			Endpoint string `json:"Endpoint"`
		} `json:"Codec"`
	}
	getJSON(t, ui+"/api/v1/settings", "", &settings)
	if settings.Codec.Endpoint != api+"/codec" {
		t.Errorf("the Web UI's codec endpoint is %q, want %q", settings.Codec.Endpoint, api+"/codec")
	}
	type payloads struct {
		Payloads []struct {
			Metadata map[string][]byte `json:"metadata"`
			Data     []byte            `json:"data"`
		} `json:"payloads"`
	}
	var history struct {
		History struct {
			Events []struct {
				Started struct {
					Input json.RawMessage `json:"input"`
				} `json:"workflowExecutionStartedEventAttributes"`
			} `json:"events"`
		} `json:"history"`
	}
	getJSON(t, ui+"/api/v1/namespaces/default/workflows/dsr%2Fdev%2F"+id+"/history?maximumPageSize=1", "", &history)
	if len(history.History.Events) == 0 {
		t.Fatalf("the Web UI shows no history for dsr/dev/%s", id)
	}
	input := history.History.Events[0].Started.Input
	var enc payloads
	if err := json.Unmarshal(input, &enc); err != nil || len(enc.Payloads) == 0 {
		t.Fatalf("workflow input %s: %v", input, err)
	}
	if got := string(enc.Payloads[0].Metadata["encoding"]); got != "binary/encrypted" {
		t.Errorf("the workflow input's encoding in Temporal is %q, want binary/encrypted", got)
	}
	req, err := http.NewRequest(http.MethodPost, settings.Codec.Endpoint+"/decode", bytes.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", ui)
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var dec payloads
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != ui || json.Unmarshal(body, &dec) != nil ||
		len(dec.Payloads) == 0 || string(dec.Payloads[0].Metadata["encoding"]) != "json/plain" ||
		!bytes.Contains(dec.Payloads[0].Data, []byte(id)) {
		t.Errorf("the codec endpoint did not decode the workflow input for the Web UI: %d %v\n%.500s",
			resp.StatusCode, resp.Header, body)
	}
}

// ---------------------------------------------------------------- dev.sh

type devScript struct {
	cmd    *exec.Cmd
	data   string
	mu     sync.Mutex
	out    bytes.Buffer
	banner chan string
	read   chan struct{} // closed when the output pipe is closed
	done   chan struct{} // closed when dev.sh has exited
	state  *os.ProcessState
}

// startDev runs scripts/dev.sh in its own process group (as a terminal runs
// `make dev`) with only the DEV_* settings and a minimal environment.
func startDev(t *testing.T, root, data string, ports []int, extraEnv []string) *devScript {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "dev.sh"))
	cmd.Dir = root
	cmd.Env = append(devstack.BaseEnv(),
		"DEV_DATA="+data,
		"DEV_TEMPORAL_PORT="+strconv.Itoa(ports[0]),
		"DEV_UI_PORT="+strconv.Itoa(ports[1]),
		"DEV_API_PORT="+strconv.Itoa(ports[2]),
		"DEV_EMULATOR_PORT="+strconv.Itoa(ports[3]),
		"DEV_METRICS_PORT="+strconv.Itoa(ports[4]),
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// An *os.File, so that Wait does not wait for grandchildren holding the pipe.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	d := &devScript{cmd: cmd, data: data, banner: make(chan string, 1), read: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go d.scan(pr)
	go func() {
		_ = cmd.Wait()
		d.state = cmd.ProcessState
		close(d.done)
	}()
	t.Cleanup(func() { d.cleanup(t) })
	return d
}

func (d *devScript) scan(r *os.File) {
	defer close(d.read)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var banner []string
	inBanner, sent := false, false
	for sc.Scan() {
		line := sc.Text()
		d.mu.Lock()
		d.out.WriteString(line + "\n")
		d.mu.Unlock()
		switch {
		case sent:
		case strings.Contains(line, bannerStart):
			inBanner = true
			banner = append(banner, line)
		case inBanner && strings.HasPrefix(line, bannerRule):
			d.banner <- strings.Join(banner, "\n")
			sent = true
		case inBanner:
			banner = append(banner, line)
		}
	}
}

func (d *devScript) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// logs returns the tail of dev.sh's output, for failure messages.
func (d *devScript) logs() string {
	out := d.output()
	if len(out) > 6000 {
		out = "…" + out[len(out)-6000:]
	}
	return "--- dev.sh output ---\n" + out
}

func (d *devScript) waitBanner(t *testing.T) banner {
	t.Helper()
	select {
	case text := <-d.banner:
		return banner{text: text}
	case <-d.done:
		<-d.read
		t.Fatalf("dev.sh exited (%v) before printing its banner\n%s", d.state, d.logs())
	case <-time.After(startTimeout):
		t.Fatalf("no banner from dev.sh within %s\n%s", startTimeout, d.logs())
	}
	return banner{}
}

// wait waits for dev.sh to exit by itself and returns its exit code.
func (d *devScript) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
		select {
		case <-d.read:
		case <-time.After(5 * time.Second):
		}
		return d.state.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("dev.sh still running after %s\n%s", timeout, d.logs())
	}
	return -1
}

// interrupt sends SIGINT to dev.sh's process group, as Ctrl-C in its terminal
// does, and checks that it exits cleanly and every process it started is gone.
func (d *devScript) interrupt(t *testing.T, ports []int) {
	t.Helper()
	start := time.Now()
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code := d.wait(t, stopTimeout)
	t.Logf("dev.sh stopped %s after Ctrl-C", time.Since(start).Round(100*time.Millisecond))
	if code != 0 {
		t.Errorf("dev.sh exited %d after Ctrl-C, want 0\n%s", code, d.logs())
	}
	if !strings.Contains(d.output(), "stopped; data kept in") {
		t.Errorf("dev.sh did not say it stopped\n%s", d.logs())
	}
	assertStopped(t, d.data, ports)
}

// assertStopped checks, within a few seconds, that no port of the stack is
// open and no process started with this DEV_DATA is left.
func assertStopped(t *testing.T, data string, ports []int) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		for _, p := range ports {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
				c.Close()
				return fmt.Errorf("port %d still open", p)
			}
		}
		if left := leftovers(data); len(left) > 0 {
			return fmt.Errorf("processes left: %v", left)
		}
		return nil
	})
}

// leftovers returns the pids of processes whose environment holds
// DEV_DATA=data: everything dev.sh started inherits it, and the directory is
// this test's own, so nothing else matches (Linux only; elsewhere nil).
func leftovers(data string) []int {
	marker := []byte("DEV_DATA=" + data + "\x00")
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, marker) {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue // exited, not yet reaped
			}
			out = append(out, pid)
		}
	}
	return out
}

// cleanup stops a dev.sh the test left running (after a failure), then kills
// anything it started that is still there.
func (d *devScript) cleanup(t *testing.T) {
	select {
	case <-d.done:
	default:
		_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
	}
	for _, pid := range leftovers(d.data) {
		t.Logf("killing process %d left by dev.sh", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if t.Failed() {
		t.Log(d.logs())
		for _, name := range []string{"temporal", "emulator", "worker", "api"} {
			if b, err := os.ReadFile(filepath.Join(d.data, "logs", name+".log")); err == nil && len(b) > 0 {
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("--- %s.log (end) ---\n%s", name, b)
			}
		}
	}
}

// ---------------------------------------------------------------- banner

type banner struct{ text string }

// url returns the first URL on the banner line that starts with label.
func (b banner) url(t *testing.T, label string) string {
	t.Helper()
	return b.field(t, `(?m)^\s*`+regexp.QuoteMeta(label)+`\s+(http://\S+)`)
}

func (b banner) field(t *testing.T, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(b.text)
	if m == nil {
		t.Fatalf("the banner has nothing matching %s:\n%s", pattern, b.text)
	}
	return m[1]
}

func (b banner) hasLine(s string) bool {
	for _, line := range strings.Split(b.text, "\n") {
		if strings.TrimSpace(line) == s {
			return true
		}
	}
	return false
}

// exports returns the NAME=VALUE pairs of the banner's `export` line.
func (b banner) exports(t *testing.T) []string {
	t.Helper()
	line := b.field(t, `(?m)^\s*export (.+)$`)
	return strings.Fields(line)
}

// runBannerCurl runs the banner's curl example (the id= line and the POST)
// with bash, and returns the request id it submitted; ok is false when curl
// is not installed.
func runBannerCurl(t *testing.T, b banner) (id string, ok bool) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl is not installed: the banner's curl lines were not run (the same request was sent with net/http)")
		return "", false
	}
	var script []string
	for _, line := range strings.Split(b.text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "id=") || strings.HasPrefix(line, "curl -sS -X POST ") {
			script = append(script, line)
		}
	}
	if len(script) != 2 {
		t.Fatalf("the banner's curl example is not an id= line and a POST:\n%s", b.text)
	}
	script = append(script, `echo; echo "id=$id"`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", strings.Join(script, "\n"))
	cmd.Env = devstack.BaseEnv()
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`(?m)^id=([0-9a-f-]{36})$`).FindSubmatch(out)
	if err != nil || m == nil || !bytes.Contains(out, []byte(`"subject_request_id":"`+string(m[1])+`"`)) {
		t.Fatalf("the banner's curl POST: %v\n%s", err, out)
	}
	return string(m[1]), true
}

// ---------------------------------------------------------------- helpers

// repoRoot is the checkout root (the directory holding go.mod); it fails
// with a hint when bin/ was not built.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
	for _, bin := range []string{"temporal", "worker", "api", "dsr"} {
		if _, err := os.Stat(filepath.Join(dir, "bin", bin)); err != nil {
			t.Fatalf("bin/%s is missing: run `make build tools` first", bin)
		}
	}
	return dir
}

// freePorts returns n distinct loopback ports nobody listens on right now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// runCLI runs a walkthrough command line ("bin/dsr ...", no shell quoting)
// from the checkout root.
func runCLI(ctx context.Context, root string, env []string, command string) (string, error) {
	args := strings.Fields(command)
	cmd := exec.CommandContext(ctx, filepath.Join(root, args[0]), args[1:]...)
	cmd.Dir = root
	cmd.Env = append(devstack.BaseEnv(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return string(out), err
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func do(t *testing.T, method, url, token string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, token, nil)
}

func post(t *testing.T, url, token string, body []byte) (int, string) {
	t.Helper()
	return do(t, http.MethodPost, url, token, bytes.NewReader(body))
}

func getJSON(t *testing.T, url, token string, into any) int {
	t.Helper()
	code, body := get(t, url, token)
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), into); err != nil {
			t.Fatalf("GET %s: %v: %.300s", url, err, body)
		}
	}
	return code
}

// erasureBody is the JSON body of the banner's curl example.
func erasureBody(id string) []byte {
	b, _ := json.Marshal(map[string]any{
		"subject_request_id":   id,
		"subject_request_type": "erasure",
		"regulation":           "gdpr",
		"submitted_time":       time.Now().UTC().Format(time.RFC3339),
		"subject_identities": []map[string]string{
			{"identity_type": "controller_customer_id", "identity_value": "user-42", "identity_format": "raw"},
		},
		"extensions": map[string]any{"localhost": map[string]any{"skip_waiting_period": true}},
	})
	return b
}

func newUUID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// eventually retries check every 500 ms until it returns nil, failing the
// test with its last error after timeout.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- Docker

// TestComposeConfig validates docker-compose.yml as `docker compose config`
// does, with compose-go (the loader that command is built on), using the
// committed example settings; and with the Compose client too when one is
// installed. No Docker engine is needed.
func TestComposeConfig(t *testing.T) {
	root := repoRoot(t)
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		composecli.WithWorkingDirectory(root),
		composecli.WithEnv([]string{"DSRFLOW_ENV_FILE=deploy/dsrflow.env.example"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	for _, name := range []string{"postgres", "temporal", "temporal-ui", "worker", "api"} {
		if _, err := project.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	var client []string
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		client = []string{"docker", "compose"}
	} else if path, err := exec.LookPath("docker-compose"); err == nil {
		client = []string{path}
	} else {
		return // the library check above is the same check
	}
	args := append(client[1:], "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")
	cmd := exec.Command(client[0], args...)
	cmd.Dir = root
	cmd.Env = append(devstack.BaseEnv(), "DSRFLOW_ENV_FILE=deploy/dsrflow.env.example")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s config -q: %v\n%s", strings.Join(client, " "), err, out)
	}
}

// TestDeployEnvExample: every variable deploy/dsrflow.env.example sets or
// shows is one dsrflow reads (internal/config), so the example cannot drift.
func TestDeployEnvExample(t *testing.T) {
	root := repoRoot(t)
	example, err := os.ReadFile(filepath.Join(root, "deploy", "dsrflow.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(filepath.Join(root, "internal", "config", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile(`(?m)^#?([A-Z][A-Z0-9_]+)=`).FindAllSubmatch(example, -1)
	if len(keys) < 10 {
		t.Fatalf("only %d variables found in deploy/dsrflow.env.example", len(keys))
	}
	for _, k := range keys {
		name := strings.TrimSuffix(string(k[1]), "_FILE")
		if !bytes.Contains(config, []byte(`"`+name+`"`)) {
			t.Errorf("deploy/dsrflow.env.example sets %s, which internal/config does not read", k[1])
		}
	}
}
