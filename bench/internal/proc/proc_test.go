package proc

import (
	"os"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	// Burn some CPU so that both clocks have ticked.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	d, err := CPU(os.Getpid())
	if err != nil || d <= 0 {
		t.Fatalf("CPU(self) = %v, %v; want > 0", d, err)
	}
	if s := SelfCPU(); s <= 0 {
		t.Fatalf("SelfCPU = %v; want > 0", s)
	}
	if d, err := CPU(0); d != 0 || err != nil {
		t.Fatalf("CPU(0) = %v, %v; want 0, nil", d, err)
	}
	kb, err := PeakRSS(os.Getpid())
	if err != nil || kb < 1024 {
		t.Fatalf("PeakRSS(self) = %d KiB, %v; want at least 1 MiB", kb, err)
	}
	if _, err := CPU(1 << 30); err == nil {
		t.Fatal("CPU of a process that does not exist: no error")
	}
}
