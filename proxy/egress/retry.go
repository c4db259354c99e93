package egress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/proxy/plumb"
)

// MaxReplayBody is the largest request body the egress reads into memory
// so that it can send it again after a 401: only for idempotent methods
// and a declared Content-Length. Anything else streams.
const MaxReplayBody = 64 << 10

// renewGuard: after a 401 made the transport renew the token, a 401 to
// that new token within this time is returned as it is, without renewing
// again.
const renewGuard = 10 * time.Second

// maxDrain bounds how much of a refused response's body is read so that
// its connection can be reused; a larger one is closed.
const maxDrain = 64 << 10

// tokens is what the transport needs of a *techacct.Source.
type tokens interface {
	Token(ctx context.Context) (string, error)
	Renew(ctx context.Context, stale string) (string, error)
}

// retryTransport sets Authorization with the technical account's token,
// and on a 401 renews it once and repeats a request that is safe to repeat
// (see New).
type retryTransport struct {
	next   http.RoundTripper
	tokens tokens
	log    *zap.Logger
	now    func() time.Time

	mu        sync.Mutex
	renewed   string    // the last token a 401 made us obtain
	renewedAt time.Time // when
}

// tokenError is a failure to obtain a token: the error handler answers
// 503 with its reason.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "technical account token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	token, err := t.tokens.Token(ctx)
	if err != nil {
		closeBody(req)
		return nil, &tokenError{err}
	}
	out := req.Clone(ctx) // a RoundTripper must not modify its request
	if err := bufferSmallBody(out); err != nil {
		return nil, err
	}
	out.Header.Set("Authorization", "Bearer "+token)
	resp, err := t.next.RoundTrip(out)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}

	if t.recentlyRenewed(token) {
		t.log.Warn("the API refused a token obtained moments ago; not renewing again",
			zap.String("method", req.Method), zap.String("path", req.URL.EscapedPath()))
		return resp, nil
	}
	rec := plumb.RecordFrom(ctx)
	rec.TokenRenewed = true
	fresh, err := t.tokens.Renew(ctx, token)
	if err != nil {
		// The caller gets the API's 401; the next call tries again.
		t.log.Warn("the API answered 401 and the token could not be renewed",
			zap.String("method", req.Method), zap.String("path", req.URL.EscapedPath()), zap.Error(err))
		return resp, nil
	}
	t.noteRenewed(fresh)
	if !replayable(out) {
		t.log.Info("the API answered 401: token renewed; the request is not safe to repeat, so its 401 goes back to the caller",
			zap.String("method", req.Method), zap.String("path", req.URL.EscapedPath()))
		return resp, nil
	}
	again := req.Clone(ctx)
	if out.GetBody != nil {
		body, err := out.GetBody()
		if err != nil {
			return resp, nil
		}
		again.Body, again.GetBody = body, out.GetBody
	}
	again.Header.Set("Authorization", "Bearer "+fresh)
	drain(resp)
	rec.Retried = true
	return t.next.RoundTrip(again)
}

// recentlyRenewed reports whether token is one a 401 made us obtain less
// than renewGuard ago.
func (t *retryTransport) recentlyRenewed(token string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return token == t.renewed && t.now().Sub(t.renewedAt) < renewGuard
}

func (t *retryTransport) noteRenewed(token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if token != t.renewed {
		t.renewed, t.renewedAt = token, t.now()
	}
}

// idempotent methods may be sent twice (RFC 9110, 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// replayable reports whether r can be sent again: an idempotent method,
// and no body or one that GetBody can produce again.
func replayable(r *http.Request) bool {
	return idempotent(r.Method) && (r.Body == nil || r.Body == http.NoBody || r.GetBody != nil)
}

// bufferSmallBody reads the body of an idempotent request with a declared
// Content-Length of at most MaxReplayBody into memory and sets GetBody, so
// that it can be sent again after a 401. Other bodies are left to stream.
func bufferSmallBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody || r.GetBody != nil || !idempotent(r.Method) ||
		r.ContentLength <= 0 || r.ContentLength > MaxReplayBody {
		return nil
	}
	buf := make([]byte, r.ContentLength)
	_, err := io.ReadFull(r.Body, buf)
	r.Body.Close()
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	r.Body, _ = r.GetBody()
	return nil
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// drain reads a little of resp's body, so that its connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
}
