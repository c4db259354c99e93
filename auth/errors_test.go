package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteErrorRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unavailable", &Error{Status: http.StatusServiceUnavailable, Reason: ReasonUnavailable, Description: "retry shortly"}, RetryAfterSeconds},
		{"unauthorized", Unauthorized(ReasonInvalidToken, "bad token", nil), ""},
		{"internal", errors.New("boom"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, tt.err)
			if got := w.Header().Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After = %q, want %q", got, tt.want)
			}
		})
	}
}
