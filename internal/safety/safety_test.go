package safety

import (
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	w := func(key, holder string, start, end int64) Window {
		return Window{Key: key, Holder: holder, Start: start, End: end}
	}
	for _, tc := range []struct {
		name string
		ws   []Window
		want int
	}{
		{"none", nil, 0},
		{"disjoint", []Window{w("k", "a", 0, 10), w("k", "b", 20, 30)}, 0},
		{"touching", []Window{w("k", "a", 0, 10), w("k", "b", 10, 20)}, 0},
		{"overlap", []Window{w("k", "a", 0, 10), w("k", "b", 9, 20)}, 1},
		{"nested", []Window{w("k", "b", 2, 3), w("k", "a", 0, 10)}, 1},
		{"other keys", []Window{w("k", "a", 0, 10), w("j", "b", 5, 20)}, 0},
		{"empty window", []Window{w("k", "a", 0, 10), w("k", "b", 5, 5), w("k", "c", 7, 6)}, 0},
		{"one long, two short", []Window{w("k", "a", 0, 100), w("k", "b", 10, 20), w("k", "c", 30, 40)}, 2},
		{"chain", []Window{w("k", "a", 0, 10), w("k", "b", 5, 15), w("k", "c", 12, 20)}, 2},
	} {
		if got := Check(tc.ws); len(got) != tc.want {
			t.Errorf("%s: Check(%v) = %d violations %v, want %d", tc.name, tc.ws, len(got), got, tc.want)
		}
	}
}

func TestMono(t *testing.T) {
	a := Mono()
	time.Sleep(10 * time.Millisecond)
	b := Mono()
	if b-a < int64(10*time.Millisecond) {
		t.Errorf("Mono() advanced %v over a 10ms sleep, want at least 10ms", time.Duration(b-a))
	}
	if b-a >= int64(time.Second) {
		t.Errorf("Mono() advanced %v over a 10ms sleep, want less than 1s", time.Duration(b-a))
	}
	// MonoAt maps this process's monotonic times onto Mono.
	exp := time.Now().Add(time.Second)
	got := MonoAt(exp)
	want := Mono() + int64(time.Second)
	if d := got - want; d < -int64(50*time.Millisecond) || d > int64(50*time.Millisecond) {
		t.Errorf("MonoAt(now+1s) = %d, want Mono()+1s = %d within 50ms (off by %v)", got, want, time.Duration(d))
	}
}

func TestRecorderClipsAtExpiration(t *testing.T) {
	var r Recorder
	start := Mono()
	exp := time.Now().Add(50 * time.Millisecond)
	r.Held("k", "a", start, start+int64(time.Hour), exp) // released long after expiring
	ws := r.Windows()
	if len(ws) != 1 {
		t.Errorf("Windows() after one Held = %v, want one window", ws)
		return
	}
	want := start + int64(50*time.Millisecond)
	if d := ws[0].End - want; d < -int64(20*time.Millisecond) || d > int64(20*time.Millisecond) {
		t.Errorf("Held(released an hour on, expiring in 50ms): window ends %v after it began, want 50ms within 20ms (clipped at the expiration)",
			time.Duration(ws[0].End-start))
	}
}
