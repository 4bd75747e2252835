package bench

import (
	"math"
	"slices"
	"time"
)

// Series holds one value per run, NaN where the run has none (a failed or
// skipped measurement), so that values of two series at the same index were
// taken in the same run.
type Series []float64

// newSeries returns a series of runs values, all missing.
func newSeries(runs int) Series {
	s := make(Series, runs)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

func nan() float64 { return math.NaN() }

// values returns the present values, sorted.
func (s Series) values() []float64 {
	out := make([]float64, 0, len(s))
	for _, v := range s {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// Median, Min and Max of the present values; NaN when there are none.
func (s Series) Median() float64 { return median(s.values()) }

func (s Series) Min() float64 {
	v := s.values()
	if len(v) == 0 {
		return math.NaN()
	}
	return v[0]
}

func (s Series) Max() float64 {
	v := s.values()
	if len(v) == 0 {
		return math.NaN()
	}
	return v[len(v)-1]
}

// Count is the number of present values.
func (s Series) Count() int { return len(s.values()) }

func median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return math.NaN()
	case n%2 == 1:
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// ratio divides s by d run by run (only where both are present).
func ratio(s, d Series) Series {
	out := newSeries(len(s))
	for i := range s {
		if i < len(d) && !math.IsNaN(s[i]) && !math.IsNaN(d[i]) && d[i] != 0 {
			out[i] = s[i] / d[i]
		}
	}
	return out
}

// Latencies are the durations of requests of one measurement.
type Latencies []time.Duration

// Quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank method.
func (l Latencies) Quantile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate is n units per second over d (MB/s when n is bytes/1e6).
func rate(n float64, d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return n / d.Seconds()
}

// mbps is bytes per d in MB/s (10^6 bytes, as the issues count).
func mbps(bytes int64, d time.Duration) float64 { return rate(float64(bytes)/1e6, d) }
