package techacct

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// Codes of Error besides IMS's own error codes (invalid_client,
// invalid_signature, invalid_token, invalid_scope, …).
const (
	// CodeUnavailable: IMS could not be reached, answered 429 or 5xx, or
	// with something unreadable. Worth retrying.
	CodeUnavailable = "unavailable"
	// CodeSigning: the exchange JWT could not be signed with the key.
	CodeSigning = "signing"
	// CodeExpiredToken: IMS issued a token that has already expired by
	// this machine's clock.
	CodeExpiredToken = "expired_token"
)

// Error is a failure to obtain a token, with a message a person can act
// on: it says what IMS refused and which GATEHOUSE_TECH_* setting to check.
// It never carries a token or a secret.
type Error struct {
	// Code is IMS's error code (invalid_client, invalid_signature,
	// invalid_token, invalid_scope, …; empty when IMS named none) or one of
	// CodeUnavailable, CodeSigning, CodeExpiredToken.
	Code    string
	Message string
	Err     error // the underlying error: an *ims.TokenError, or one wrapping ims.ErrUnavailable or ims.ErrRateLimited, …
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed without a
// change of configuration (Code is CodeUnavailable).
func (e *Error) Temporary() bool { return e.Code == CodeUnavailable }

// explain turns an error of the IMS client into an *Error.
func (s *Source) explain(err error) *Error {
	var te *ims.TokenError
	if errors.As(err, &te) {
		return s.explainRefusal(te)
	}
	var rl *ims.RateLimitError
	if errors.As(err, &rl) || errors.Is(err, ims.ErrRateLimited) {
		return &Error{Code: CodeUnavailable, Err: err,
			Message: fmt.Sprintf("IMS is unavailable: it is rate limiting token requests at %s (%v); retrying later", s.cfg.IMSURL, err)}
	}
	if errors.Is(err, ims.ErrBadAnswer) {
		return &Error{Code: CodeUnavailable, Err: err,
			Message: fmt.Sprintf("IMS answered the token request with something that cannot be used: %v: check that %s is the IMS host", err, EnvName("IMSURL"))}
	}
	return &Error{Code: CodeUnavailable, Err: err,
		Message: fmt.Sprintf("IMS could not be reached: %v: check %s and the network", err, EnvName("IMSURL"))}
}

// explainRefusal turns IMS's refusal of a token request into a message
// naming the setting to fix.
func (s *Source) explainRefusal(te *ims.TokenError) *Error {
	jwt := s.method == MethodJWT
	var msg string
	switch code, desc := te.Code, strings.ToLower(te.Description); {
	case code == "invalid_client":
		msg = fmt.Sprintf("IMS refused the client id or client secret (invalid_client): check %s and %s",
			EnvName("ClientID"), EnvName("ClientSecret"))
	case code == "invalid_signature":
		msg = fmt.Sprintf("IMS refused the JWT's signature (invalid_signature): the private key does not match a certificate registered for this integration: upload the certificate of %s in the developer console",
			EnvName("PrivateKey"))
	case code == "invalid_token" && mentions(desc, "audience", "aud"):
		msg = fmt.Sprintf("IMS refused the JWT's audience %s (invalid_token): check %s, which must be the IMS host of the integration (e.g. %s)",
			strconv.Quote(s.cfg.IMSURL+"/c/"+s.cfg.ClientID), EnvName("IMSURL"), DefaultIMSURL)
	case code == "invalid_token" && mentions(desc, "issuer", "iss"):
		msg = fmt.Sprintf("IMS refused the JWT's issuer %q (invalid_token): check %s, the integration's organization id (…@AdobeOrg)",
			s.cfg.OrgID, EnvName("OrgID"))
	case code == "invalid_token" && mentions(desc, "subject", "sub"):
		msg = fmt.Sprintf("IMS refused the JWT's subject %q (invalid_token): check %s, the integration's technical account id (…@techacct.adobe.com)",
			s.cfg.AccountID, EnvName("AccountID"))
	case code == "invalid_token" && strings.Contains(desc, "expire"):
		msg = fmt.Sprintf("IMS refused the JWT as expired (invalid_token): check this machine's clock (the JWT is valid for %s from its time, %s)",
			s.cfg.JWTLifetime, s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z"))
	case code == "invalid_token":
		msg = fmt.Sprintf("IMS refused the JWT (invalid_token): check %s, %s and %s",
			EnvName("OrgID"), EnvName("AccountID"), EnvName("IMSURL"))
	case code == "invalid_scope" && jwt:
		msg = fmt.Sprintf("IMS refused the token request (invalid_scope): %s for this integration: check %s against the APIs added to the integration in the developer console",
			notSubscribed("metascope", te.Description, s.cfg.Metascopes), EnvName("Metascopes"))
	case code == "invalid_scope":
		msg = fmt.Sprintf("IMS refused the token request (invalid_scope): %s for this integration: check %s against the scopes of its OAuth server-to-server credential in the developer console",
			notSubscribed("scope", te.Description, s.cfg.Scopes), EnvName("Scopes"))
	case code == "unsupported_grant_type":
		msg = fmt.Sprintf("IMS does not accept client credentials here (unsupported_grant_type): check %s; an integration with a JWT credential only needs %s instead of %s",
			EnvName("IMSURL"), list([]string{EnvName("AccountID"), EnvName("PrivateKey"), EnvName("Metascopes")}, "and"), EnvName("Scopes"))
	case code == "bad_request" || code == "invalid_request":
		msg = fmt.Sprintf("IMS rejected the token request as malformed (%s): check %s", code, EnvName("IMSURL"))
	case code == "":
		msg = fmt.Sprintf("IMS refused the token request with status %d: check %s, %s and %s",
			te.Status, EnvName("IMSURL"), EnvName("ClientID"), EnvName("ClientSecret"))
	default:
		msg = fmt.Sprintf("IMS refused the token request (%s)", code)
	}
	if te.Description != "" {
		msg += fmt.Sprintf(" (IMS said: %q)", te.Description)
	}
	return &Error{Code: te.Code, Message: msg, Err: te}
}

// mentions reports whether desc holds any of the words.
func mentions(desc string, words ...string) bool {
	for _, w := range strings.FieldsFunc(desc, notWordChar) {
		if slices.Contains(words, w) {
			return true
		}
	}
	return false
}

func notWordChar(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
}

// notSubscribed says which of the configured (meta)scopes IMS refused:
// "metascope a is not subscribed", "metascopes a and b are not
// subscribed", or, when desc names none of them, "one of the metascopes a
// and b is not subscribed".
func notSubscribed(noun, desc string, configured []string) string {
	words := strings.FieldsFunc(desc, notWordChar)
	var named []string
	for _, c := range configured {
		if slices.Contains(words, c) {
			named = append(named, c)
		}
	}
	switch {
	case len(named) == 1:
		return noun + " " + named[0] + " is not subscribed"
	case len(named) > 1:
		return noun + "s " + list(named, "and") + " are not subscribed"
	case len(configured) == 1:
		return noun + " " + configured[0] + " is not subscribed"
	}
	return "one of the " + noun + "s " + list(configured, "and") + " is not subscribed"
}
