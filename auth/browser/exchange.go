package browser

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
)

// Errors of the code exchange, by what the person can do about them.
var (
	// errCodeRefused: IMS refused the code (used already, expired, or
	// issued for another redirect_uri or verifier). Signing in again helps.
	errCodeRefused = errors.New("the identity service refused the authorization code")
	// errIMSUnavailable: IMS could not be reached, or answered 5xx or 429.
	// Trying again later helps.
	errIMSUnavailable = errors.New("the identity service is unavailable")
	// errMisconfigured: IMS refused this server's client (id or secret),
	// or answered in a way that cannot be used. Only the administrator
	// can help.
	errMisconfigured = errors.New("the identity service refused this server's sign-in request")
)

// exchange trades an authorization code for an access token at IMS's
// token endpoint through the IMS client, so that its answer is read as
// leniently as every other token answer (ims.Client.AuthorizationCode),
// and sorts the failures by what the person can do. The token never
// appears in an error.
func (h *Handler) exchange(ctx context.Context, code, verifier string) (string, error) {
	r, err := h.ims.AuthorizationCode(ctx, h.cfg.ClientID, h.cfg.ClientSecret, code, h.redirectURI, verifier)
	var te *ims.TokenError
	switch {
	case errors.As(err, &te) && te.Code == "invalid_grant":
		return "", fmt.Errorf("%w: %w", errCodeRefused, err)
	case errors.As(err, &te), errors.Is(err, ims.ErrBadAnswer):
		return "", fmt.Errorf("%w: %w", errMisconfigured, err)
	case err != nil: // unreachable, 5xx, 429
		return "", fmt.Errorf("%w: %w", errIMSUnavailable, err)
	case r.TokenType != "" && !strings.EqualFold(r.TokenType, "bearer"):
		return "", fmt.Errorf("%w: token endpoint answered a %q token, not a bearer", errMisconfigured, clip(r.TokenType))
	}
	return r.AccessToken, nil
}
