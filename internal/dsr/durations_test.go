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
	s := dsr.BatchSettings{MaxSize: 1000, MaxWait: time.Hour, MaxIDs: 1999, MaxSignalsPerRun: 2000, PollInterval: 10 * time.Minute, MaxTaskAge: 1080 * time.Hour}
	b, err := json.Marshal(dsr.BatchInput{Destination: "mixpanel", Regulation: "gdpr", Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"max_wait":"1h0m0s"`, `"poll_interval":"10m0s"`, `"max_task_age":"1080h0m0s"`, `"max_size":1000`} {
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
		old.MaxWait != time.Hour || old.PollInterval != 10*time.Minute || old.MaxSize != 5 {
		t.Errorf("nanoseconds: %+v %v", old, err)
	}
	if err := json.Unmarshal([]byte(`{"max_wait":"soon"}`), &old); err == nil {
		t.Error("a bad duration was accepted")
	}
}
