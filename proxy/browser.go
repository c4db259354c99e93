package proxy

import (
	"net/http"
)

// redirectBrowsers wraps the authentication step so that its 401 to a
// request b calls a browser's becomes a 302 to the sign-in page. Only the
// answer changes: the step decides as ever, and the Set-Cookie it wrote
// (an expired login token cleared) goes out with the redirect. Requests
// that are not a browser's, and every request the step lets through, use
// w itself: once authenticated, the proxied request does not go through
// the wrapper.
func redirectBrowsers(authenticate func(http.Handler) http.Handler, b BrowserSignIn) func(http.Handler) http.Handler {
	redirect := whenBrowser(authenticate, b, func(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
		return &browserWriter{ResponseWriter: w, b: b, r: r}
	})
	return func(next http.Handler) http.Handler {
		return redirect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if bw, ok := w.(*browserWriter); ok {
				w = bw.ResponseWriter
			}
			next.ServeHTTP(w, r)
		}))
	}
}

// whenBrowser wraps the authentication step so that, for a request b
// calls a browser's, the step writes through wrap's writer; other
// requests use w itself.
func whenBrowser(authenticate func(http.Handler) http.Handler, b BrowserSignIn,
	wrap func(http.ResponseWriter, *http.Request) http.ResponseWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		inner := authenticate(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if b.IsBrowser(r) {
				w = wrap(w, r)
			}
			inner.ServeHTTP(w, r)
		})
	}
}

// browserWriter turns a 401 into a 302 to the sign-in page, and another
// refusal into a page for a person (BrowserSignIn.RefusalPage); either way
// the step's JSON body is dropped.
type browserWriter struct {
	http.ResponseWriter
	b           BrowserSignIn
	r           *http.Request
	redirected  bool // the step's body is dropped
	wroteHeader bool
}

func (w *browserWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(code) // net/http logs the superfluous call
		return
	}
	w.wroteHeader = true
	if code >= 400 && code != http.StatusUnauthorized {
		h := w.Header()
		// The page sets its own type and length; the JSON's would lie.
		ct, cl := h["Content-Type"], h["Content-Length"]
		h.Del("Content-Type")
		h.Del("Content-Length")
		if w.b.RefusalPage(w.ResponseWriter, w.r, code, h.Get("X-Reason")) {
			w.redirected = true
			return
		}
		if ct != nil {
			h["Content-Type"] = ct
		}
		if cl != nil {
			h["Content-Length"] = cl
		}
	}
	if code != http.StatusUnauthorized {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.redirected = true
	h := w.Header()
	// The 401's description is for API clients; a browser is shown the
	// sign-in page instead.
	for _, k := range []string{"WWW-Authenticate", "X-Reason", "Content-Type", "Content-Length", "Retry-After"} {
		h.Del(k)
	}
	h.Set("Location", w.b.SignInURL(w.r))
	h.Set("Cache-Control", "no-store")
	w.ResponseWriter.WriteHeader(http.StatusFound)
}

func (w *browserWriter) Write(b []byte) (int, error) {
	if w.redirected {
		return len(b), nil
	}
	w.wroteHeader = true // an implicit 200
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *browserWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// HeaderSignIn is on forward-auth's 401 to a browser's navigation: where
// the front proxy should send the browser to sign in. nginx's
// auth_request knows only 2xx, 401 and 403 from the endpoint, so the
// redirect is the front proxy's to make (the README's nginx example does);
// the decision of who is a browser stays Gatehouse's, the same as on the
// proxy path.
const HeaderSignIn = "X-Gatehouse-Sign-In"

// hintBrowsers wraps forward-auth's authentication step so that its 401
// to a browser's navigation (the original request, see originalRequest)
// names the sign-in address in HeaderSignIn. The status and the rest of
// the answer stay the step's own.
func hintBrowsers(authenticate func(http.Handler) http.Handler, b BrowserSignIn) func(http.Handler) http.Handler {
	return whenBrowser(authenticate, b, func(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
		return &hintWriter{ResponseWriter: w, b: b, r: r}
	})
}

// hintWriter adds HeaderSignIn to a 401.
type hintWriter struct {
	http.ResponseWriter
	b           BrowserSignIn
	r           *http.Request
	wroteHeader bool
}

func (w *hintWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized && !w.wroteHeader {
		w.Header().Set(HeaderSignIn, w.b.SignInURL(w.r))
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *hintWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true // an implicit 200
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *hintWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
