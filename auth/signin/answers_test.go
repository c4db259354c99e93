package signin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/session"
)

// TestIMSAnswersOverHTTP: what a client sees, through the whole sign-in
// step, when IMS answers in variant shapes, answers unusably, or cannot
// answer.
func TestIMSAnswersOverHTTP(t *testing.T) {
	t.Run("variant shapes sign in", func(t *testing.T) {
		f := newFixture(t)
		f.emu.SetVariantAnswers(true)
		f.signIn(bob)
		if f.seen == nil || f.seen.Email != "bob@example.com" || !strings.Contains(strings.Join(f.seen.Groups, ","), "administrators") {
			t.Errorf("identity %+v", f.seen)
		}
	})
	for _, tt := range []struct {
		name, endpoint, body, field string
	}{
		{"profile {}", imstest.EndpointProfile, `{}`, "userId"},
		{"profile without email", imstest.EndpointProfile, `{"userId":"` + alice + `"}`, "email"},
		{"organizations null", imstest.EndpointOrganizations, `null`, "not a JSON array"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			core, logs := observer.New(zapcore.InfoLevel)
			f.si.log = zap.New(core)
			f.emu.SetAnswer(tt.endpoint, []byte(tt.body))
			w := f.request("GET", "/content", f.token(alice), nil, nil)
			wantRefusal(t, w, http.StatusBadGateway, "", auth.ReasonServiceError)
			if c := loginCookie(w); c != nil {
				t.Errorf("cookie %v set on a refusal", c)
			}
			if _, err := f.store.GetUser(context.Background(), alice); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("GetUser: %v, want not found", err)
			}
			var named int
			for _, e := range logs.All() {
				if strings.Contains(e.ContextMap()["error"].(string), tt.field) {
					named++
				}
			}
			if named != 1 {
				t.Errorf("%d log entries name %q, want 1: %v", named, tt.field, logs.All())
			}
		})
	}
	for _, tt := range []struct {
		name       string
		set        func(*imstest.Server, bool)
		retryAfter string
	}{
		{"down", (*imstest.Server).SetDown, "5"},
		{"rate limited", (*imstest.Server).SetRateLimited, "1"}, // the emulator's Retry-After
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.token(alice)
			tt.set(f.emu, true)
			w := f.request("GET", "/content", tok, nil, nil)
			wantRefusal(t, w, http.StatusServiceUnavailable, "", auth.ReasonUnavailable)
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
		})
	}
}
