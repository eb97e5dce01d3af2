package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
)

// startEmulator runs `dsr mixpanel-emulator` with args on a free address
// until the test ends, and returns its base URL.
func startEmulator(t *testing.T, args ...string) string {
	t.Helper()
	addr, err := devstack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var out, errOut bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"mixpanel-emulator", "--addr", addr, "--project-token", "p", "--oauth-token", "o"}, args...), &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("emulator exited %d: %s", code, errOut.String())
		}
	})
	base := "http://" + addr
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := devstack.WaitHTTP(wctx, base+"/_emulator/healthz", 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	return base
}

// mixpanelCall makes one authenticated call at Mixpanel's path under /api/app.
func mixpanelCall(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url+"?token=p", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer o")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// --fail-ids PREFIX: a task holding a distinct id that starts with PREFIX ends
// FAILURE; the others succeed. Answers follow the OpenAPI document.
func TestEmulatorFailIDs(t *testing.T) {
	base := startEmulator(t, "--fail-ids", "poison-", "--step", "20ms", "--rate-limit", "0") + "/api/app/data-deletions/v3.0"
	create := func(ids string) string {
		t.Helper()
		code, m := mixpanelCall(t, "POST", base, `{"distinct_ids":`+ids+`}`)
		results, _ := m["results"].(map[string]any)
		id, _ := results["task_id"].(string)
		if code != http.StatusCreated || id == "" {
			t.Fatalf("create %s: %d %v", ids, code, m)
		}
		return id
	}
	bad := create(`["ok-1","poison-2"]`)
	good := create(`["ok-3","not-poison-4"]`)
	deadline := time.Now().Add(10 * time.Second)
	for _, tc := range []struct{ id, want string }{{bad, "FAILURE"}, {good, "SUCCESS"}} {
		for {
			_, m := mixpanelCall(t, "GET", base+"/"+tc.id, "")
			st, _ := m["results"].(map[string]any)["status"].(string)
			if st == tc.want {
				break
			}
			if time.Now().After(deadline) || st == "SUCCESS" || st == "FAILURE" {
				t.Fatalf("task %s is %s, want %s", tc.id, st, tc.want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// --prose-shapes answers as Mixpanel's prose reference shows: 200 creates, a
// retrieval's as a list; the deprecated --fail-prefix still works.
func TestEmulatorProseShapes(t *testing.T) {
	base := startEmulator(t, "--prose-shapes", "--fail-prefix", "x-", "--step", "20ms", "--rate-limit", "0") + "/api/app"
	code, m := mixpanelCall(t, "POST", base+"/data-retrievals/v3.0/", `{"distinct_ids":["a"]}`)
	if list, _ := m["results"].([]any); code != http.StatusOK || len(list) != 1 {
		t.Fatalf("prose retrieval create: %d %v", code, m)
	}
	code, m = mixpanelCall(t, "POST", base+"/data-deletions/v3.0/", `{"distinct_ids":["x-1"]}`)
	id, _ := m["results"].(map[string]any)["task_id"].(string)
	if code != http.StatusOK || id == "" {
		t.Fatalf("prose deletion create: %d %v", code, m)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, m = mixpanelCall(t, "GET", base+"/data-deletions/v3.0/"+id, "")
		res, _ := m["results"].(map[string]any)
		if res["status"] == "FAILURE" {
			if _, ok := res["result"]; !ok {
				t.Errorf("prose status without result: %v", res)
			}
			break
		}
		if time.Now().After(deadline) || res["status"] == "SUCCESS" {
			t.Fatalf("task holding x-1: %v, want FAILURE", res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
