package identity_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// EnvBenchProfiles sets how many profiles the benchmarks generate
// (DSR_BENCH_PROFILES=1000000 for the sizing run); benchDefaultProfiles
// otherwise, so that a plain `go test -bench` stays quick.
const (
	EnvBenchProfiles     = "DSR_BENCH_PROFILES"
	benchDefaultProfiles = 20000
)

func benchProfiles(b *testing.B) int {
	b.Helper()
	v := os.Getenv(EnvBenchProfiles)
	if v == "" {
		return benchDefaultProfiles
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", EnvBenchProfiles, v)
	}
	return n
}

// deviceID is a UUID-shaped device id derived from i.
func deviceID(i int) string {
	sum := sha256.Sum256([]byte("device " + strconv.Itoa(i)))
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// benchProfileID is the id of generated profile i: "p-00000042" (ascending,
// like an auto-increment key), or with scattered a random-looking one such
// as "u-9e3779b97f4a7c15" (like a UUID or an mParticle MPID).
func benchProfileID(i int, scattered bool) string {
	if scattered {
		return fmt.Sprintf("u-%016x", uint64(i+1)*0x9E3779B97F4A7C15) // a bijection: unique ids
	}
	return fmt.Sprintf("p-%08d", i)
}

// writeBenchFile writes n generated profiles as JSONL: a customer id, an
// email and an iOS vendor id each, and two attributes.
func writeBenchFile(b *testing.B, n int, scattered bool) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "profiles.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, `{"profile_id":"%s","identities":{"controller_customer_id":"c-%08d","email":"user%08d@example.com","ios_vendor_id":"%s"},"attributes":{"plan":"pro","signup_year":%d}}`+"\n",
			benchProfileID(i, scattered), i, i, deviceID(i), 2015+i%10)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchImport(b *testing.B, s *identity.Store, path string, n int) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rep, err := s.Import(context.Background(), owner, f, identity.JSONL, identity.ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if rep.Imported != n || rep.Failed != 0 {
		b.Fatalf("imported %d, failed %d (%v), want %d imported", rep.Imported, rep.Failed, rep.Errors, n)
	}
}

// BenchmarkImport measures Import of a generated JSONL file into an empty
// SQLite store, in the default batches of 1000 profiles, reporting profiles/s:
// with ascending profile ids, and with scattered ones (whose index takes
// random inserts).
//
// suppressed_list is the ascending case into a store whose controller has a
// suppression list (one erased person), so that every identity is hashed
// and looked up against it.
func BenchmarkImport(b *testing.B) {
	for _, scattered := range []bool{false, true} {
		name := "ascending_ids"
		if scattered {
			name = "scattered_ids"
		}
		b.Run(name, func(b *testing.B) { benchmarkImport(b, scattered, false) })
	}
	b.Run("suppression_list", func(b *testing.B) { benchmarkImport(b, false, true) })
}

func benchmarkImport(b *testing.B, scattered, suppressions bool) {
	n := benchProfiles(b)
	path := writeBenchFile(b, n, scattered)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		s, err := identity.Open(context.Background(), sqldbtest.SQLiteDSN(b), identity.WithKeys(testRing(b)))
		if err != nil {
			b.Fatal(err)
		}
		if suppressions {
			if _, err := s.Erase(context.Background(), identity.EraseInput{Owner: owner, RequestID: "r",
				Identities: []identity.Identity{{Type: "email", Value: "erased@example.com"}}}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		benchImport(b, s, path, n)
		total += time.Since(start)
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "profiles/s")
}

// BenchmarkResolve measures what resolving one request costs at a populated
// SQLite store: Find for an email and a hashed customer id, then Resolve,
// reporting the p50 and p99 latencies.
func BenchmarkResolve(b *testing.B) {
	n := benchProfiles(b)
	path := writeBenchFile(b, n, false)
	s, err := identity.Open(context.Background(), sqldbtest.SQLiteDSN(b), identity.WithKeys(testRing(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	benchImport(b, s, path, n)
	ctx := context.Background()
	dest := []config.Destination{{Name: "mixpanel", IdentityType: "controller_customer_id", DeviceIDPrefix: "$device:"}}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		k := (i * 7919) % n
		i++
		sum := sha256.Sum256(fmt.Appendf(nil, "c-%08d", k))
		qs := []identity.Query{
			{Type: "email", Value: fmt.Sprintf(" User%08d@Example.com", k)},
			{Type: "controller_customer_id", Format: "sha256", Value: hex.EncodeToString(sum[:])},
		}
		start := time.Now()
		ms, err := s.Find(ctx, owner, qs)
		if err != nil {
			b.Fatal(err)
		}
		res := identity.Resolve(identity.Input{Identities: qs, Matches: ms, Destinations: dest})
		lat = append(lat, time.Since(start))
		if res.Rule != identity.RuleSingleProfile || len(res.Plans) != 1 || len(res.Plans[0].DistinctIDs) != 1 {
			b.Fatalf("resolution %+v", res)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
