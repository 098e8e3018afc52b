package safety

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
		got := Check(tc.ws)
		assert.Len(t, got, tc.want, "%s: %v", tc.name, got)
	}
}

func TestMono(t *testing.T) {
	a := Mono()
	time.Sleep(10 * time.Millisecond)
	b := Mono()
	assert.GreaterOrEqual(t, b-a, int64(10*time.Millisecond))
	assert.Less(t, b-a, int64(time.Second))
	// MonoAt maps this process's monotonic times onto Mono.
	exp := time.Now().Add(time.Second)
	got := MonoAt(exp)
	assert.InDelta(t, float64(Mono()+int64(time.Second)), float64(got), float64(50*time.Millisecond))
}

func TestRecorderClipsAtExpiration(t *testing.T) {
	var r Recorder
	start := Mono()
	exp := time.Now().Add(50 * time.Millisecond)
	r.Held("k", "a", start, start+int64(time.Hour), exp) // released long after expiring
	ws := r.Windows()
	if assert.Len(t, ws, 1) {
		assert.InDelta(t, float64(start+int64(50*time.Millisecond)), float64(ws[0].End), float64(20*time.Millisecond))
	}
}
