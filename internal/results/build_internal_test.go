package results

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineReader(t *testing.T) {
	long := strings.Repeat("a", 150<<10) // longer than the 64 KiB read buffer
	tests := []struct {
		name  string
		input string
		max   int
		want  []string
		err   error
	}{
		{"empty", "", 10, nil, nil},
		{"lines", "a\nbb\n", 10, []string{"a", "bb"}, nil},
		{"no final newline", "a\nbb", 10, []string{"a", "bb"}, nil},
		{"CRLF", "a\r\nbb\r\n", 10, []string{"a", "bb"}, nil},
		{"blank lines kept", "\n\r\n", 10, []string{"", ""}, nil},
		{"exactly max", "0123456789\r\n", 10, []string{"0123456789"}, nil},
		{"max plus one", "a\n0123456789x\n", 10, []string{"a"}, ErrLineTooLong},
		{"long line", long + "\nb\n", len(long), []string{long, "b"}, nil},
		{"long line no newline", long, len(long), []string{long}, nil},
		{"long line too long", "a\n" + long + "\n", len(long) - 1, []string{"a"}, ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.input), iotest.OneByteReader(strings.NewReader(tt.input))} {
				lr := newLineReader(r, tt.max)
				var got []string
				var err error
				for {
					var line []byte
					if line, err = lr.next(); err != nil {
						break
					}
					got = append(got, string(line))
				}
				if err == io.EOF {
					err = nil
				}
				if !errors.Is(err, tt.err) || len(got) != len(tt.want) {
					t.Fatalf("got %d lines, err %v; want %d lines, err %v", len(got), err, len(tt.want), tt.err)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("line %d = %.20q..., want %.20q...", i+1, got[i], tt.want[i])
					}
				}
			}
		})
	}
}

// TestBudgetReader: the budget is shared by all readers and checked on
// every read, whatever the zip directory declared.
func TestBudgetReader(t *testing.T) {
	left := int64(10)
	r1 := &budgetReader{r: strings.NewReader("123456"), left: &left}
	if b, err := io.ReadAll(r1); err != nil || string(b) != "123456" {
		t.Fatalf("first reader: %q, %v", b, err)
	}
	r2 := &budgetReader{r: strings.NewReader("7890x"), left: &left}
	_, err := io.ReadAll(r2)
	if !errors.Is(err, errBudget) {
		t.Fatalf("err = %v, want errBudget", err)
	}
	left = 4
	r3 := &budgetReader{r: bytes.NewReader([]byte("1234")), left: &left}
	if _, err := io.ReadAll(r3); err != nil {
		t.Fatalf("exactly the budget: %v", err)
	}
}
