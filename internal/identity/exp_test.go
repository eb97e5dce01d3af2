package identity

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestExpBulk(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EXP_N"))
	if n == 0 {
		t.Skip()
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "p.jsonl")
	f, _ := os.Create(path)
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, `{"profile_id":"p-%08d","identities":{"controller_customer_id":"c-%08d","email":"user%08d@example.com","ios_vendor_id":"%08x-aaaa-bbbb-cccc-%012x"},"attributes":{"plan":"pro","signup_year":%d}}`+"\n", i, i, i, i*2654435761%4294967296, uint64(i)*11400714819323198485%281474976710656, 2015+i%10)
	}
	w.Flush()
	f.Close()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EXP_DROP") != "" {
		for _, c := range []string{"sha256", "sha1", "md5"} {
			if _, err := s.db.Exec("DROP INDEX identity_values_" + c); err != nil {
				t.Fatal(err)
			}
		}
	}
	r, _ := os.Open(path)
	start := time.Now()
	rep, err := s.Import(ctx, r, JSONL, ImportOptions{})
	t.Logf("import %d: %v (%v) %v", rep.Imported, time.Since(start), err, rep.Failed)
	if os.Getenv("EXP_DROP") != "" {
		for _, c := range []string{"sha256", "sha1", "md5"} {
			st := time.Now()
			if _, err := s.db.Exec("CREATE INDEX identity_values_" + c + " ON identity_values (" + c + ")"); err != nil {
				t.Fatal(err)
			}
			t.Logf("index %s: %v", c, time.Since(st))
		}
	}
	t.Logf("total %v", time.Since(start))
	fi, _ := os.Stat(filepath.Join(dir, "db.sqlite"))
	t.Logf("size %d MB", fi.Size()>>20)
}
