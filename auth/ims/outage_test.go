package ims

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestIsOutage: only answers IMS could not give count as an outage; an
// answer it gave but Gatehouse cannot use does not.
func TestIsOutage(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"500", 500, `{"error":"server_error"}`, true},
		{"503", 503, "", true},
		{"429", 429, "", true},
		{"404", 404, "", false},
		{"200 not JSON", 200, "<html>maintenance</html>", false},
		{"200 too large", 200, `{"valid":true,"reason":"` + strings.Repeat("x", maxResponseBody) + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newIMSServer(t, tt.status, tt.body)
			_, err := newTestClient(t, s).ValidateToken(context.Background(), clientToken, testClient)
			if err == nil {
				t.Fatal("no error")
			}
			if got := IsOutage(err); got != tt.want {
				t.Errorf("IsOutage(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close() // nothing listens there any more
		c, err := NewClient("http://"+addr, &http.Client{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ValidateToken(context.Background(), clientToken, testClient)
		if !IsOutage(err) {
			t.Errorf("IsOutage(%v) = false, want true", err)
		}
	})
	if IsOutage(nil) {
		t.Error("IsOutage(nil) = true")
	}
}
