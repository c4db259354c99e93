package browser

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"strconv"

	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/auth"
)

// pageData is one of the small pages a person sees: errors of the
// sign-in, the sign-out's confirmation and its result. The text is fixed
// here; nothing from the request is shown but an IMS error code checked
// against imsErrorCode, so that no one can make the page say what they
// like, and no token, code or secret can appear.
type pageData struct {
	status   int
	Title    string
	Message  string
	Link     string // filled in by page: "Try again" goes to the sign-in
	LinkText string
	Form     string // a POST form's action, instead of Link
	FormText string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;line-height:1.5}a,button{font-size:1em}</style>
</head>
<body>
<h1 id="title">{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{if .Form}}<form method="post" action="{{.Form}}"><button id="action" type="submit">{{.FormText}}</button></form>{{end}}
{{- if .Link}}<p><a id="action" href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
</body>
</html>
`))

// The pages, by what happened.
var (
	pageBadCallback = pageData{status: http.StatusBadRequest, Title: "Sign-in failed",
		Message: "The answer from the sign-in service was incomplete. Please try again."}
	pageStateMismatch = pageData{status: http.StatusForbidden, Title: "Sign-in failed",
		Message: "This sign-in was not started in this browser, was used already, or took too long. Please try again."}
	pageCodeRefused = pageData{status: http.StatusBadRequest, Title: "Sign-in failed",
		Message: "The sign-in service did not accept the sign-in code: it was used already or has expired. Please try again."}
	pageUnavailable = pageData{status: http.StatusServiceUnavailable, Title: "Sign-in is unavailable",
		Message: "The sign-in service could not be reached. Please try again in a moment."}
	pageMisconfigured = pageData{status: http.StatusServiceUnavailable, Title: "Sign-in is unavailable",
		Message: "This server's sign-in is not set up correctly. Please try again later, or tell the administrator."}
	pageDenied = pageData{status: http.StatusForbidden, Title: "Sign-in cancelled",
		Message: "Sign-in was cancelled or refused at the sign-in service."}
	pageRefused = pageData{status: http.StatusForbidden, Title: "Sign-in refused",
		Message: "Your account was signed in at the sign-in service, but this server does not accept it."}
	pageDisabled = pageData{status: http.StatusForbidden, Title: "Account disabled",
		Message: "Your account is disabled on this server. Please contact the administrator."}
	pageAmbiguousCookie = pageData{status: http.StatusBadRequest, Title: "Please sign in again",
		Message: "This browser sent this server's sign-in cookie twice, so it could not tell who you are. The cookies were cleared."}
	pageCannotCheck = pageData{status: http.StatusServiceUnavailable, Title: "Please try again in a moment",
		Message: "This server could not check your sign-in just now.", LinkText: "Try again"}
	pageSignedOut = pageData{status: http.StatusOK, Title: "You are signed out",
		Message: "You are signed out of this server.", LinkText: "Sign in again"}
	pageConfirmSignOut = pageData{status: http.StatusOK, Title: "Sign out?",
		Message: "Do you want to sign out of this server?", FormText: "Sign out"}
	pageSignOutRefused = pageData{status: http.StatusForbidden, Title: "Sign-out refused",
		Message: "This sign-out did not come from this server's own pages."}
	pageSignOutFailed = pageData{status: http.StatusServiceUnavailable, Title: "Sign-out failed",
		Message: "You could not be signed out just now. Please try again in a moment."}
)

// imsErrorCode is the shape of an OAuth error code, the only part of an
// error from IMS a page repeats.
var imsErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

// imsErrorPage is the page for an error IMS sent back to the callback.
func imsErrorPage(code string) pageData {
	var p pageData
	switch code {
	case "access_denied":
		p = pageDenied
	case "temporarily_unavailable", "server_error":
		p = pageUnavailable
	default:
		// invalid_request, unauthorized_client, invalid_scope, …: this
		// server's request was wrong.
		p = pageMisconfigured
		p.status = http.StatusBadRequest
	}
	if imsErrorCode.MatchString(code) {
		p.Message += " (The sign-in service said: " + code + ".)"
	}
	return p
}

// exchangePage is the page for a failed code exchange.
func exchangePage(err error) pageData {
	switch {
	case errors.Is(err, errCodeRefused):
		return pageCodeRefused
	case errors.Is(err, errIMSUnavailable):
		return pageUnavailable
	}
	return pageMisconfigured
}

// signInPage is the page for a token the sign-in step did not accept.
func signInPage(err error) pageData {
	ae := auth.AsError(err)
	switch {
	case ae.Reason == auth.ReasonUserDisabled:
		return pageDisabled
	case ae.Status >= 500:
		p := pageUnavailable
		if ae.Status != http.StatusServiceUnavailable {
			p = pageMisconfigured
		}
		return p
	}
	return pageRefused
}

// page writes p. For pages with a "Try again" link (every error page),
// the link starts a new sign-in that returns to rd.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, p pageData, rd string) {
	if p.Link == "" && p.Form == "" && p.LinkText == "" && p.FormText == "" {
		p.LinkText = "Try again"
	}
	if p.LinkText != "" && p.Link == "" {
		p.Link = h.signInURL(rd)
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		h.log.Error("browser sign-in: page template", zap.Error(err))
		http.Error(w, p.Title, p.status)
		return
	}
	hd := w.Header()
	noStore(w)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(p.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// RefusalPage is proxy.BrowserSignIn's: the page for a refusal of a
// browser's page other than a 401, which the proxy turns into the
// sign-in's redirect. A disabled account, two login-token cookies (cleared
// by the refusal itself) and the identity service or the store away get a
// page; anything else keeps the refusal's own answer.
func (h *Handler) RefusalPage(w http.ResponseWriter, r *http.Request, status int, reason string) bool {
	var p pageData
	rd := r.URL.RequestURI()
	switch reason {
	case auth.ReasonUserDisabled:
		p = pageDisabled
	case auth.ReasonAmbiguousCookie:
		p = pageAmbiguousCookie
	case auth.ReasonUnavailable, auth.ReasonServiceError, auth.ReasonStoreUnavailable:
		p = pageCannotCheck
		p.Link = SafeRedirect(rd, h.reserved) // the same page again, if it is a page of the backend's
	default:
		return false
	}
	p.status = status
	h.page(w, r, p, rd)
	return true
}
