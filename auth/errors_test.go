package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

func TestWriteErrorRetryAfter(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		name       string
		err        error
		status     int
		reason     string
		retryAfter string
	}{
		{"unavailable, default wait", auth.Unavailable("down", 0, cause), 503, auth.ReasonUnavailable, "5"},
		{"unavailable, IMS's wait", auth.Unavailable("rate limited", 30*time.Second, cause), 503, auth.ReasonUnavailable, "30"},
		{"unavailable, a fraction rounds up", auth.Unavailable("rate limited", 1500*time.Millisecond, cause), 503, auth.ReasonUnavailable, "2"},
		{"a bare 503 still says when", &auth.Error{Status: http.StatusServiceUnavailable, Reason: auth.ReasonUnavailable, Description: "retry shortly"}, 503, auth.ReasonUnavailable, "5"},
		{"store unavailable", auth.StoreUnavailable("sign-in", cause), 503, auth.ReasonStoreUnavailable, "5"},
		{"service error", auth.ServiceError("bad answer", cause), 502, auth.ReasonServiceError, ""},
		{"unauthorized", auth.Unauthorized(auth.ReasonInvalidToken, "no", nil), 401, auth.ReasonInvalidToken, ""},
		{"user disabled", auth.UserDisabled(cause), 403, auth.ReasonUserDisabled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			auth.WriteError(rec, tt.err)
			if rec.Code != tt.status || rec.Header().Get("X-Reason") != tt.reason {
				t.Errorf("answer %d %q, want %d %q", rec.Code, rec.Header().Get("X-Reason"), tt.status, tt.reason)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if rec.Code >= http.StatusInternalServerError && rec.Header().Get("WWW-Authenticate") != "" {
				t.Error("a server-side failure carries a bearer challenge")
			}
		})
	}
}
