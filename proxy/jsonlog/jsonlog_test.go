package jsonlog

import (
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
			if got, want := string(AppendISO8601(nil, tz)), tz.Format(ISO8601Layout); got != want {
				t.Fatalf("AppendISO8601(%v) = %q, want %q", tz, got, want)
			}
		}
	}
}

func BenchmarkISO8601(b *testing.B) {
	tm := time.Date(2026, 11, 23, 3, 4, 5, 6_789_000, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("layout", func(b *testing.B) {
		for b.Loop() {
			buf = tm.AppendFormat(buf[:0], ISO8601Layout)
		}
	})
	b.Run("appendISO8601", func(b *testing.B) {
		for b.Loop() {
			buf = AppendISO8601(buf[:0], tm)
		}
	})
}

// zapField is how zap's JSON encoder writes one field, alone in a line.
func zapField(t *testing.T, f zapcore.Field) string {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{EncodeDuration: zapcore.SecondsDurationEncoder})
	buf, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{f})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	return buf.String()
}

func TestAppendStringMatchesZap(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and backslash \`, "new\nline\r\ttab", "\x00\x01\x1f\x7f",
		"é ü 日本 🙂", "bad \xff utf8 \xc3", "\xe2\x82", "</script>&", "\u2028\u2029",
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		got := `{"k":` + string(AppendString(nil, s)) + "}\n"
		if want := zapField(t, zap.String("k", s)); got != want {
			t.Fatalf("AppendString(%q) gives %s, zap %s", s, got, want)
		}
	}
}

func TestAppendSecondsMatchesZap(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 999, time.Microsecond + 7, 1234567 * time.Nanosecond, time.Second, 90 * time.Minute, -time.Millisecond} {
		got := `{"k":` + string(AppendSeconds(nil, d)) + "}\n"
		if want := zapField(t, zap.Duration("k", d)); got != want {
			t.Errorf("AppendSeconds(%v) gives %s, zap %s", d, got, want)
		}
	}
}
