package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	p := Policy{First: 10 * time.Millisecond, Max: 500 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 80, 160, 320, 500, 500}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := (Policy{First: time.Second, Max: time.Millisecond}).Delay(3); got != time.Second {
		t.Errorf("a Max below First: Delay(3) = %v, want First", got)
	}
}

func TestJitterStaysInHalfToWhole(t *testing.T) {
	for range 1000 {
		if d := Jitter(100 * time.Millisecond); d < 50*time.Millisecond || d > 100*time.Millisecond {
			t.Fatalf("Jitter(100ms) = %v", d)
		}
	}
	if Jitter(0) != 0 {
		t.Error("Jitter(0) is not 0")
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended context: %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
}
