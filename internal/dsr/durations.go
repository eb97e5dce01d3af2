package dsr

import (
	"encoding/json"
	"fmt"
	"time"
)

// batchSettingsJSON is BatchSettings on the wire: durations as Go duration
// strings ("1h0m0s"), so the Web UI shows a batch's input readably.
type batchSettingsJSON struct {
	MaxSize          int      `json:"max_size"`
	MaxWait          Duration `json:"max_wait"`
	MaxIDs           int      `json:"max_ids"`
	MaxSignalsPerRun int      `json:"max_signals_per_run"`
}

// MarshalJSON writes the durations as strings.
func (s BatchSettings) MarshalJSON() ([]byte, error) {
	return json.Marshal(batchSettingsJSON{
		MaxSize: s.MaxSize, MaxWait: Duration(s.MaxWait), MaxIDs: s.MaxIDs, MaxSignalsPerRun: s.MaxSignalsPerRun,
	})
}

// UnmarshalJSON reads durations as strings or, as batches started before
// they were strings carry them, as integer nanoseconds.
func (s *BatchSettings) UnmarshalJSON(b []byte) error {
	var w batchSettingsJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = BatchSettings{
		MaxSize: w.MaxSize, MaxWait: time.Duration(w.MaxWait), MaxIDs: w.MaxIDs, MaxSignalsPerRun: w.MaxSignalsPerRun,
	}
	return nil
}

// Duration is a time.Duration written in JSON as a Go duration string and
// read from one or from integer nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as "1h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1h0m0s" or 3600000000000.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("dsr: duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var ns int64
	if err := json.Unmarshal(b, &ns); err != nil {
		return fmt.Errorf("dsr: a duration is a string like \"1h0m0s\" or integer nanoseconds: %w", err)
	}
	*d = Duration(ns)
	return nil
}

// taskInputJSON is TaskInput on the wire, durations as strings.
type taskInputJSON struct {
	taskInputPlain
	PollInterval Duration `json:"poll_interval"`
	MaxTaskAge   Duration `json:"max_task_age"`
}

// taskInputPlain has TaskInput's fields without its JSON methods.
type taskInputPlain TaskInput

// MarshalJSON writes the durations as strings, for the Web UI.
func (in TaskInput) MarshalJSON() ([]byte, error) {
	return json.Marshal(taskInputJSON{taskInputPlain: taskInputPlain(in), PollInterval: Duration(in.PollInterval), MaxTaskAge: Duration(in.MaxTaskAge)})
}

// UnmarshalJSON reads durations as strings or integer nanoseconds.
func (in *TaskInput) UnmarshalJSON(b []byte) error {
	var w taskInputJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*in = TaskInput(w.taskInputPlain)
	in.PollInterval, in.MaxTaskAge = time.Duration(w.PollInterval), time.Duration(w.MaxTaskAge)
	return nil
}
