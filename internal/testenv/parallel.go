package testenv

import "testing"

// RunParallelItems runs op on 16 goroutines (8 per core on this 2-core
// machine, see testing.B.SetParallelism) for b.N calls and reports
// items/s, each call counting perOp items (1 for a single create, 100 for
// a batch). A failed call fails the benchmark.
func RunParallelItems(b *testing.B, perOp int, op func() error) {
	b.Helper()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "items/s")
}
