package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendISO8601MatchesLayout(t *testing.T) {
	zones := []*time.Location{
		time.UTC,
		time.FixedZone("CET", 3600),
		time.FixedZone("NPT", 5*3600+45*60),
		time.FixedZone("NST", -(3*3600 + 30*60)),
		time.FixedZone("LMT", -(4*3600 + 56*60 + 2)), // seconds in the offset
		time.FixedZone("UTC+0", 0),
	}
	times := []time.Time{
		time.Date(2026, 11, 23, 3, 4, 5, 6_789_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // five digits: falls back
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		{},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		times = append(times, time.Unix(r.Int64N(1<<35)-(1<<33), r.Int64N(1e9)))
	}
	for _, tm := range times {
		for _, z := range zones {
			tz := tm.In(z)
			if got, want := string(appendISO8601(nil, tz)), tz.Format(iso8601Layout); got != want {
				t.Fatalf("appendISO8601(%v) = %q, want %q", tz, got, want)
			}
		}
	}
}

func BenchmarkISO8601(b *testing.B) {
	tm := time.Date(2026, 11, 23, 3, 4, 5, 6_789_000, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("layout", func(b *testing.B) {
		for b.Loop() {
			buf = tm.AppendFormat(buf[:0], iso8601Layout)
		}
	})
	b.Run("appendISO8601", func(b *testing.B) {
		for b.Loop() {
			buf = appendISO8601(buf[:0], tm)
		}
	})
}
