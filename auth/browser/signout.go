package browser

import (
	"net/http"

	"go.uber.org/zap"
)

// serveSignOut signs the browser out: the login token is revoked and its
// cookie cleared (Config.SignOut), then the browser goes to SignOutURL or
// is shown that it is signed out.
//
// A sign-out reachable by GET is a target for cross-site request forgery:
// any page could sign its visitors out with a link or an image. So a GET
// takes effect only when the browser says it did not come from another
// site: Sec-Fetch-Site "same-origin" (a link on this site) or "none" (the
// address bar, a bookmark); or, from a browser that does not send that
// header, the SameSite=Strict marker cookie set at sign-in, which browsers
// send only on requests that start on this site. Any other GET is shown a
// page asking to confirm, whose button POSTs here. A POST takes effect
// unless Sec-Fetch-Site or Origin shows another site (the login-token
// cookie, SameSite=Lax by default, is not sent on such a POST anyway).
func (h *Handler) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	if !h.fromThisSite(r) {
		if r.Method == http.MethodPost {
			h.log.Warn("browser sign-out refused: cross-site POST", zap.String("outcome", "csrf_refused"))
			h.page(w, r, pageSignOutRefused, "/")
			return
		}
		p := pageConfirmSignOut
		p.Form = h.prefix + "sign-out"
		h.page(w, r, p, "/")
		return
	}
	if r.Method == http.MethodHead {
		// Never a state change on HEAD.
		w.WriteHeader(http.StatusOK)
		return
	}
	h.signOut(w, r)
}

// Logout wraps the logout endpoint (POST <prefix>logout), whose answer is
// JSON for desktop extensions and scripts: a browser's form post there
// (Accept preferring HTML) is signed out as by <prefix>sign-out and sent
// to SignOutURL or shown that it is signed out. Other requests get next.
func (h *Handler) Logout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || len(r.Header["Accept"]) != 1 || !prefersHTML(r.Header["Accept"][0]) {
			next.ServeHTTP(w, r)
			return
		}
		h.signOut(w, r)
	})
}

// signOut revokes and clears the login token, then sends the browser on.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.SignOut(w, r); err != nil {
		h.page(w, r, pageSignOutFailed, "/")
		return
	}
	c := h.markerCookie()
	c.Value, c.MaxAge = "", -1
	http.SetCookie(w, c)
	if h.cfg.SignOutURL != "" {
		noStore(w)
		w.Header().Set("Location", h.cfg.SignOutURL)
		w.WriteHeader(http.StatusFound)
		return
	}
	h.page(w, r, pageSignedOut, "/")
}

// fromThisSite reports whether r started on this site (see serveSignOut).
func (h *Handler) fromThisSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default: // same-site (a sibling subdomain) or cross-site
		return false
	}
	if r.Method == http.MethodPost {
		if o := r.Header.Get("Origin"); o != "" {
			return o == h.origin
		}
	}
	c, err := r.Cookie(h.marker)
	return err == nil && c.Value == "1"
}
