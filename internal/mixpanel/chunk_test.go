package mixpanel_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dsrflow/dsrflow/internal/mixpanel"
)

func TestChunk(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint("id-", i)
		}
		return out
	}
	for _, tc := range []struct {
		n, size int
		want    []int
	}{
		{0, 1999, nil},
		{1, 1999, []int{1}},
		{1999, 1999, []int{1999}},
		{2000, 1999, []int{1999, 1}},
		{4500, 1999, []int{1999, 1999, 502}},
		{4500, 0, []int{1999, 1999, 502}}, // size < 1: DefaultMaxIDs
		{5, 2, []int{2, 2, 1}},
		{3, 1, []int{1, 1, 1}},
	} {
		in := ids(tc.n)
		chunks := mixpanel.Chunk(in, tc.size)
		var sizes []int
		var joined []string
		for _, c := range chunks {
			sizes = append(sizes, len(c))
			joined = append(joined, c...)
		}
		if !slices.Equal(sizes, tc.want) {
			t.Errorf("Chunk(%d ids, %d): sizes %v, want %v", tc.n, tc.size, sizes, tc.want)
		}
		if !slices.Equal(joined, in) {
			t.Errorf("Chunk(%d ids, %d) lost or reordered ids", tc.n, tc.size)
		}
	}
	in := ids(4)
	chunks := mixpanel.Chunk(in, 2)
	_ = append(chunks[0], "extra")
	if chunks[1][0] != "id-2" || in[2] != "id-2" {
		t.Error("appending to a chunk overwrote the next one")
	}
}
