package results_test

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/results"
)

// heapInUseMetrics add up to runtime.MemStats.HeapInuse; runtime/metrics
// reads them without stopping the world, unlike runtime.ReadMemStats.
var heapInUseMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

// readHeapInUse returns the bytes of heap spans in use (HeapInuse).
func readHeapInUse(samples []metrics.Sample) uint64 {
	metrics.Read(samples)
	var n uint64
	for _, s := range samples {
		n += s.Value.Uint64()
	}
	return n
}

// samplePeakHeap samples the heap in use every millisecond until the
// returned function is called, which returns the largest value seen.
func samplePeakHeap() (stop func() uint64) {
	done, peak := make(chan struct{}), make(chan uint64)
	go func() {
		samples := make([]metrics.Sample, len(heapInUseMetrics))
		for i, name := range heapInUseMetrics {
			samples[i].Name = name
		}
		var peakSeen uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peakSeen = max(peakSeen, readHeapInUse(samples))
			select {
			case <-done:
				peak <- peakSeen
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

// heapInuse collects garbage and returns the heap in use.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestBuildMemoryIsFlat: building from a 200,000-event export (about 30 MB
// of JSON) grows the heap by far less than the export's size: Build
// streams. Measured: about 1 MB (3 MB with -race).
func TestBuildMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("large export")
	}
	const events, limitMB = 200_000, 20
	exp := writeLargeExport(t, t.TempDir(), events)
	out, err := os.Create(filepath.Join(t.TempDir(), "bundle.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	base := heapInuse()
	stop := samplePeakHeap()
	st, err := results.Build(context.Background(), out, results.BundleInput{Exports: readers(t, exp), Destinations: []string{"mixpanel"}})
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != events || len(st.Files) != 2 {
		t.Fatalf("Records = %d in %d files, want %d in 2", st.Records, len(st.Files), events)
	}
	growth := float64(int64(peak)-int64(base)) / (1 << 20)
	t.Logf("%d events: heap in use %.1f MB before, peak %.1f MB (growth %.1f MB)", events,
		float64(base)/(1<<20), float64(peak)/(1<<20), growth)
	if growth > limitMB {
		t.Errorf("peak heap growth %.1f MB, want under %d MB", growth, limitMB)
	}
}

// BenchmarkBuildMillionEvents builds a bundle from a Mixpanel export of
// 1,000,000 events (about 160 MB of JSON, generated once) into a file, and
// reports the peak heap in use (target: under 100 MB).
func BenchmarkBuildMillionEvents(b *testing.B) {
	const events = 1_000_000
	dir := b.TempDir()
	exp := writeLargeExport(b, dir, events)
	if zr, err := zipSize(exp); err == nil {
		b.SetBytes(zr)
	}
	in := results.BundleInput{Exports: readers(b, exp), Destinations: []string{"mixpanel"}}
	out := filepath.Join(dir, "bundle.zip")

	heapInuse()
	stop := samplePeakHeap()
	for b.Loop() {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		st, err := results.Build(context.Background(), f, in)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		if st.Records != events {
			b.Fatalf("Records = %d, want %d", st.Records, events)
		}
	}
	b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// zipSize returns the uncompressed size of the entries of a zip.
func zipSize(name string) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return 0, err
	}
	var n int64
	for _, zf := range zr.File {
		n += int64(zf.UncompressedSize64)
	}
	return n, nil
}

// BenchmarkBuildFromSpool builds bundles from a 200,000-event export (about
// 30 MB of JSON), read from a plain file and from an encrypted download
// spool, to show what encrypting downloads at rest costs.
func BenchmarkBuildFromSpool(b *testing.B) {
	const events = 200_000
	dir := b.TempDir()
	exp := writeLargeExport(b, dir, events)
	spec, err := keyring.Generate("k1")
	if err != nil {
		b.Fatal(err)
	}
	ring, err := keyring.Parse(spec)
	if err != nil {
		b.Fatal(err)
	}
	s, err := results.OpenStore(filepath.Join(dir, "store"), results.StoreOptions{Wrap: ring.WrapWriter, Unwrap: ring.UnwrapReader})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := s.NewSpool()
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Remove()
	f, err := os.Open(exp)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := io.Copy(sp, f); err != nil {
		b.Fatal(err)
	}
	spooled, err := sp.Export()
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.Logf("spooling the %d-byte export took %v", spooled.Size(), time.Since(start))
	for name, export := range map[string]results.ExportReader{"plain": readers(b, exp)[0], "spool": spooled} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				st, err := results.Build(context.Background(), io.Discard, results.BundleInput{Exports: []results.ExportReader{export}, Destinations: []string{"mixpanel"}})
				if err != nil || st.Records != events {
					b.Fatalf("Records = %d, %v", st.Records, err)
				}
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
