package dsr_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// TestBatchSettingsDurations: readable strings out, strings or the older
// nanoseconds in.
func TestBatchSettingsDurations(t *testing.T) {
	s := dsr.BatchSettings{MaxSize: 1000, MaxWait: time.Hour, MaxIDs: 1999, MaxSignalsPerRun: 2000}
	b, err := json.Marshal(dsr.BatchInput{Destination: "mixpanel", Regulation: "gdpr", Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"max_wait":"1h0m0s"`, `"max_size":1000`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back dsr.BatchInput
	if err := json.Unmarshal(b, &back); err != nil || back.Settings != s {
		t.Errorf("round trip: %+v %v", back.Settings, err)
	}
	var old dsr.BatchSettings
	if err := json.Unmarshal([]byte(`{"max_size":5,"max_wait":3600000000000,"max_ids":9,"max_signals_per_run":10,"poll_interval":600000000000,"max_task_age":0}`), &old); err != nil ||
		old.MaxWait != time.Hour || old.MaxSize != 5 {
		t.Errorf("nanoseconds: %+v %v", old, err)
	}
	if err := json.Unmarshal([]byte(`{"max_wait":"soon"}`), &old); err == nil {
		t.Error("a bad duration was accepted")
	}
}

func TestTaskInputDurations(t *testing.T) {
	in := dsr.TaskInput{Destination: "mixpanel", TaskID: "t1", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		PollInterval: 10 * time.Minute, MaxTaskAge: 1080 * time.Hour, Members: []dsr.Member{{ControllerID: "acme", RequestID: "r1", DistinctIDs: []string{"u1"}}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"poll_interval":"10m0s"`, `"max_task_age":"1080h0m0s"`, `"task_id":"t1"`, `"request_id":"r1"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if strings.Count(string(b), "poll_interval") != 1 {
		t.Errorf("poll_interval twice: %s", b)
	}
	var back dsr.TaskInput
	if err := json.Unmarshal(b, &back); err != nil || back.PollInterval != in.PollInterval || back.MaxTaskAge != in.MaxTaskAge ||
		back.TaskID != "t1" || !back.CreatedAt.Equal(in.CreatedAt) || len(back.Members) != 1 {
		t.Errorf("round trip: %+v %v", back, err)
	}
	var old dsr.TaskInput
	if err := json.Unmarshal([]byte(`{"destination":"m","task_id":"t","poll_interval":600000000000,"max_task_age":3600000000000}`), &old); err != nil ||
		old.PollInterval != 10*time.Minute || old.MaxTaskAge != time.Hour || old.TaskID != "t" {
		t.Errorf("nanoseconds: %+v %v", old, err)
	}
}
