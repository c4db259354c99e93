package browser

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/securecookie"
	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// attemptTTL is how long a sign-in attempt may take, from Gatehouse's
// redirect to IMS to the callback: the person may have to type a password
// and pass a second factor.
const attemptTTL = 10 * time.Minute

// randomLen is the number of random bytes in state and in the PKCE
// verifier: 256 bits, 43 characters in base64url (RFC 7636 wants 43–128).
const randomLen = 32

// stateLen is the length of an encoded state.
var stateLen = base64.RawURLEncoding.EncodedLen(randomLen)

// cookieIDLen is how much of the state names the attempt's cookie, so that
// sign-ins in several tabs at once do not overwrite each other's.
const cookieIDLen = 12

// maxCodeLen bounds the authorization code read from the callback.
const maxCodeLen = 4096

// attempt is one sign-in under way, as its cookie keeps it. The cookie is
// signed and encrypted (securecookie), so the browser can neither read the
// verifier nor change rd, and it is HttpOnly, SameSite=Lax: sent on IMS's
// top-level redirect back to the callback, not on cross-site subrequests.
type attempt struct {
	State    string `json:"s"`
	Verifier string `json:"v"`  // PKCE code_verifier
	RD       string `json:"rd"` // where to go afterwards, already checked by SafeRedirect
}

func newAttempt(rd string) (*attempt, error) {
	state, err := randomString()
	if err != nil {
		return nil, err
	}
	verifier, err := randomString()
	if err != nil {
		return nil, err
	}
	return &attempt{State: state, Verifier: verifier, RD: rd}, nil
}

func randomString() (string, error) {
	b := make([]byte, randomLen)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// challenge is the PKCE S256 code_challenge of the verifier (RFC 7636
// section 4.2): base64url(SHA-256(verifier)), without padding.
func (a *attempt) challenge() string { return S256(a.Verifier) }

// S256 is the PKCE code challenge of verifier by method S256.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// stateCodecs sign and encrypt attempt cookies; the first encodes, every
// one decodes (keys being rotated). from is the login-token cookie keys
// they were derived from.
type stateCodecs struct {
	from   []session.KeyPair
	codecs []securecookie.Codec
}

// newStateCodecs derives the attempt cookie's keys from the login-token
// cookie keys, so that replicas sharing those keys accept each other's
// attempts, and a login-token value can never pass for an attempt or the
// other way round (securecookie also binds each value to its cookie name).
func newStateCodecs(keys []session.KeyPair) (stateCodecs, error) {
	if len(keys) == 0 {
		return stateCodecs{}, errors.New("Keys: at least one cookie key is required")
	}
	cs := stateCodecs{from: keys, codecs: make([]securecookie.Codec, len(keys))}
	for i, k := range keys {
		if len(k.Hash) == 0 || len(k.Block) == 0 {
			return stateCodecs{}, fmt.Errorf("Keys: key %d is empty", i+1)
		}
		c := securecookie.New(derive(k.Hash, "hash"), derive(k.Block, "block")).
			SetSerializer(securecookie.JSONEncoder{}).
			MaxAge(int(attemptTTL / time.Second))
		cs.codecs[i] = c
	}
	return cs, nil
}

// stateCodecsNow returns the codecs of the keys in use now: when
// Config.KeysNow says the login-token keys changed, they are derived again.
// A change that does not parse (it cannot: the session manager checked
// the keys) keeps the codecs in use, and is logged.
func (h *Handler) stateCodecsNow() []securecookie.Codec {
	cur := h.codecs.Load()
	if h.cfg.KeysNow == nil {
		return cur.codecs
	}
	keys := h.cfg.KeysNow()
	if samePairs(cur.from, keys) {
		return cur.codecs
	}
	next, err := newStateCodecs(keys)
	if err != nil {
		h.log.Error("sign-in attempt keys: keeping the previous ones", zap.Error(err))
		return cur.codecs
	}
	h.codecs.Store(&next)
	return next.codecs
}

func samePairs(a, b []session.KeyPair) bool {
	return slices.EqualFunc(a, b, func(x, y session.KeyPair) bool {
		return bytes.Equal(x.Hash, y.Hash) && bytes.Equal(x.Block, y.Block)
	})
}

// derive is a 32-byte key for the attempt cookie from a login-token cookie
// key (HMAC-SHA256 with a label naming the use).
func derive(key []byte, use string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gatehouse browser sign-in attempt " + use))
	return m.Sum(nil)
}

// cookieName is the name of the cookie of the attempt with this state.
func (h *Handler) cookieName(state string) string {
	return h.stateCookie + state[:cookieIDLen]
}

func (h *Handler) attemptCookie(a *attempt) (*http.Cookie, error) {
	name := h.cookieName(a.State)
	v, err := securecookie.EncodeMulti(name, a, h.stateCodecsNow()[0])
	if err != nil {
		return nil, err
	}
	return &http.Cookie{
		Name: name, Value: v, Path: "/", MaxAge: int(attemptTTL / time.Second),
		HttpOnly: true, Secure: h.cfg.CookieSecure, SameSite: http.SameSiteLaxMode,
	}, nil
}

// readAttempt returns the attempt this browser started with state, or nil
// when there is none (no cookie, expired, forged, or a state that is not
// the one in it). cookieName is the attempt cookie's name when state has
// the shape of one, for the caller to clear, else "".
func (h *Handler) readAttempt(r *http.Request, state string) (a *attempt, cookieName string) {
	if len(state) != stateLen {
		return nil, ""
	}
	if _, err := base64.RawURLEncoding.DecodeString(state); err != nil {
		return nil, ""
	}
	name := h.cookieName(state)
	cs := r.CookiesNamed(name)
	if len(cs) != 1 {
		// None, or more than one (planted beside ours): no attempt.
		return nil, name
	}
	var got attempt
	if err := securecookie.DecodeMulti(name, cs[0].Value, &got, h.stateCodecsNow()...); err != nil {
		return nil, name
	}
	if subtle.ConstantTimeCompare([]byte(got.State), []byte(state)) != 1 || got.Verifier == "" {
		return nil, name
	}
	return &got, name
}

func (h *Handler) clearCookie(name string) *http.Cookie {
	return &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: h.cfg.CookieSecure, SameSite: http.SameSiteLaxMode}
}

// markerCookie says that this browser signed in through Gatehouse's
// pages. It is SameSite=Strict, so a browser sends it only on requests
// that start on this site: a GET sign-out that carries it was not
// triggered by another site (see serveSignOut). It is no credential.
func (h *Handler) markerCookie() *http.Cookie {
	return &http.Cookie{Name: h.marker, Value: "1", Path: "/", MaxAge: int(markerTTL / time.Second),
		HttpOnly: true, Secure: h.cfg.CookieSecure, SameSite: http.SameSiteStrictMode}
}

// markerTTL is how long the marker lasts; it outlives login tokens, which
// it does not stand for.
const markerTTL = 30 * 24 * time.Hour
