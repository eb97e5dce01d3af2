package mixpanel

// Chunk splits ids into consecutive chunks of at most size ids, keeping their
// order; no chunk is empty and nil ids give no chunks. size < 1 means
// DefaultMaxIDs. The chunks share ids' backing array but cannot grow into
// each other.
func Chunk(ids []string, size int) [][]string {
	if size < 1 {
		size = DefaultMaxIDs
	}
	var out [][]string
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}
