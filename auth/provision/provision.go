// Package provision creates the users that sign in with IMS tokens and keeps
// their profile, organizations and group memberships in step with IMS. A
// sync costs two IMS calls (profile and organizations); it runs at a user's first sign-in and
// again only when the last sync is older than the sync interval.
package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-proxy/gatehouse/auth"
	"github.com/gatehouse-proxy/gatehouse/auth/groupmap"
	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/cache"
)

// Config configures a Provisioner.
type Config struct {
	IMS   *ims.Client   // required
	Store session.Store // required
	// Org is the IMS organization ("…@AdobeOrg") whose groups are synced.
	// When empty, no groups are synced, as in the content backend's own
	// handler: memberships from an unnamed organization would let any
	// organization the user belongs to grant local groups.
	Org     string
	Mapping *groupmap.Mapping // nil maps every group to its own name
	// SyncInterval is how long a sync counts as fresh. Default 1 hour.
	SyncInterval time.Duration
	// StaleIfError is how long after a known user's sync was due they are
	// still served as last synced (stored profile and groups) while IMS
	// cannot answer: unreachable, timed out, 5xx or 429. Past it, or for
	// an answer IMS gave that cannot be used, the sign-in is refused with
	// 503. A user not yet in the store is refused either way. 0: off.
	StaleIfError time.Duration
	// OnSync is called after a sync changed a user's groups, so caches of
	// the user's identity can be dropped. May be nil.
	OnSync func(userID string)
	// CacheTTL is how long a user read from the store (or written by a
	// sync) is trusted from memory, while their sync is fresh, before Ensure
	// reads the store again; a sync made by another replica is seen here
	// within it. 0 means the default, 30s (as the session cache); a
	// negative value disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the user cache. 0 means the default, 100,000.
	CacheSize int
	Now       func() time.Time
	Logger    *zap.Logger
}

// Provisioner creates and syncs users. It is safe for concurrent use.
type Provisioner struct {
	cfg Config
	now func() time.Time
	log *zap.Logger

	flight singleflight.Group // keyed by user id

	// users caches fresh users by id, so that a bearer token seen for the
	// first time costs no store read for a user known to be fresh. Its
	// entries live CacheTTL; when full, arbitrary ones are evicted.
	users *cache.Cache[string, cachedUser]
	// gen is bumped by Changed before it drops entries: a store read that
	// started before a bump is not cached (remember checks it with the
	// user's shard locked), so it cannot bring back what a change
	// notification dropped.
	gen atomic.Uint64

	// holding maps the id of a user served as last synced through an IMS
	// outage to when their sync may be tried again, so that a burst of
	// sign-ins costs IMS one attempt per user per staleRetryInterval. An
	// entry lives until a sync succeeds, which marks the outage's end
	// for that user (it is logged once per user per outage), or until
	// evicted to keep within CacheSize.
	holding *cache.Cache[string, time.Time]
}

// staleRetryInterval is the least time between two sync attempts for a
// user served as last synced while IMS cannot answer.
const staleRetryInterval = 5 * time.Second

// cachedUser is a user and when it was read from the store (or synced).
// The *session.User is shared: read only.
type cachedUser struct {
	u      *session.User
	readAt time.Time
}

// Defaults of Config.
const (
	DefaultCacheTTL  = 30 * time.Second
	DefaultCacheSize = 100_000
)

// New returns a Provisioner.
func New(cfg Config) (*Provisioner, error) {
	if cfg.IMS == nil || cfg.Store == nil {
		return nil, errors.New("provision: an IMS client and a store are required")
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Hour
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	p := &Provisioner{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if p.now == nil {
		p.now = time.Now
	}
	p.users = cache.New(cache.Options[string, cachedUser]{MaxEntries: cfg.CacheSize, TTL: max(cfg.CacheTTL, 0), Now: p.now})
	p.holding = cache.New(cache.Options[string, time.Time]{MaxEntries: cfg.CacheSize, Now: p.now})
	if p.log == nil {
		p.log = zap.NewNop()
	}
	return p, nil
}

// Fresh reports whether u may be used as it is: synced within the sync
// interval, or served as last synced because IMS could not answer their
// due sync moments ago (see Config.StaleIfError), so that the next
// attempt waits a little.
func (p *Provisioner) Fresh(u *session.User) bool {
	if u == nil {
		return false
	}
	now := p.now()
	if now.Sub(u.SyncedAt) < p.cfg.SyncInterval {
		return true
	}
	retryAt, ok := p.holding.Get(u.ID)
	return ok && now.Before(retryAt) && p.withinStale(u, now)
}

// withinStale reports whether StaleIfError still covers u's last sync.
func (p *Provisioner) withinStale(u *session.User, now time.Time) bool {
	return p.cfg.StaleIfError > 0 && !now.After(u.SyncedAt.Add(p.cfg.SyncInterval+p.cfg.StaleIfError))
}

// hold records that u is served as last synced because IMS could not
// answer their sync (cause), and logs it once per outage.
func (p *Provisioner) hold(u *session.User, now time.Time, cause error) {
	held := false
	p.holding.Update(u.ID, func(_ time.Time, ok bool) (time.Time, bool) {
		held = ok
		return now.Add(staleRetryInterval), true
	})
	if !held {
		p.log.Warn("IMS cannot sync a user; serving their last synced profile and groups",
			zap.String("user", u.ID), zap.Time("synced_at", u.SyncedAt),
			zap.Duration("past_due", now.Sub(u.SyncedAt.Add(p.cfg.SyncInterval))),
			zap.Duration("stale_if_error", p.cfg.StaleIfError), zap.Error(cause))
	}
}

// release ends the outage episode of user id, if any: their sync succeeded.
func (p *Provisioner) release(id string) {
	p.holding.Delete(id)
}

// Ensure returns the user the validated token belongs to, creating or
// syncing them first when they are new or stale. token is the raw IMS
// access token, used to read the profile and organizations on the user's
// behalf. Errors are *auth.Error values fit for the client.
//
// A user an administrator disabled is refused with 403 USER_DISABLED,
// without a call to IMS. The flag is read from the store: disabled users
// are never cached, and an enabled user cached here is trusted for
// CacheTTL; the login token the caller then issues is refused by the store
// for a user disabled meanwhile (see Forget).
func (p *Provisioner) Ensure(ctx context.Context, token string, claims *ims.Claims) (*session.User, error) {
	if u := p.cached(claims.UserID); u != nil {
		return u, nil
	}
	u, err := p.getUser(ctx, claims.UserID)
	switch {
	case err == nil && u.Disabled:
		return nil, disabled(u.ID)
	case err == nil && p.Fresh(u):
		return u, nil
	case err != nil && !errors.Is(err, session.ErrNotFound):
		return nil, storeUnavailable(fmt.Errorf("load user: %w", err))
	}
	return p.sync(ctx, token, claims, u)
}

// sync runs one sync per user at a time; concurrent sign-ins of the same
// user share its outcome. The shared work is detached from the first
// caller's cancellation (the IMS client's timeout bounds it), so a client
// that hangs up does not fail the others.
func (p *Provisioner) sync(ctx context.Context, token string, claims *ims.Claims, stale *session.User) (*session.User, error) {
	ch := p.flight.DoChan(claims.UserID, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		// A sync that finished between the caller's read of the store and
		// now has left a fresh user: read again, so that a burst costs one
		// sync.
		u, err := p.getUser(ctx, claims.UserID)
		switch {
		case err == nil && u.Disabled:
			return nil, disabled(u.ID)
		case err == nil && p.Fresh(u):
			return u, nil
		case err == nil:
			stale = u
		}
		return p.syncUncached(ctx, token, claims, stale)
	})
	select {
	case r := <-ch:
		u, _ := r.Val.(*session.User)
		return u, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Provisioner) syncUncached(ctx context.Context, token string, claims *ims.Claims, stale *session.User) (*session.User, error) {
	var (
		wg      sync.WaitGroup
		profile *ims.Profile
		orgs    []ims.Organization
		perr    error
		oerr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		profile, perr = p.cfg.IMS.Profile(ctx, token)
	}()
	// Organizations are read even without a configured Org: the user's
	// organization ids are kept for the API check of x-gw-ims-org-id. This
	// happens at sync only, never per request.
	orgs, oerr = p.cfg.IMS.Organizations(ctx, token)
	wg.Wait()
	if err := errors.Join(perr, oerr); err != nil {
		switch {
		case errors.Is(err, ims.ErrUnauthorized):
			return nil, auth.Unauthorized(auth.ReasonInvalidToken,
				"the identity service no longer accepts this token (revoked?); get a new access token from IMS", err)
		case errors.Is(err, ims.ErrBadAnswer):
			// Nothing is synced from an answer that lacks what a user is
			// made of, and a stale user is not served from it either: the
			// service is up and saying something wrong, which an operator
			// must see.
			return nil, badAnswer(err)
		}
		if now := p.now(); stale != nil && ims.IsOutage(err) && p.withinStale(stale, now) {
			// IMS is down or rate-limiting but the user is known: serving
			// them with the memberships of the last sync, for a bounded
			// time, beats locking every known user out during an outage.
			p.hold(stale, now, err)
			return stale, nil
		}
		return nil, auth.Unavailable("the identity service could not be reached to set up your account; retry shortly",
			ims.RetryAfterOf(err), err)
	}
	if profile.UserID != claims.UserID {
		return nil, badAnswer(fmt.Errorf("%w: profile userId %q differs from the token's user %q",
			ims.ErrBadAnswer, profile.UserID, claims.UserID))
	}
	if err := p.checkOrgs(orgs); err != nil {
		return nil, badAnswer(err)
	}
	groups := p.groups(orgs)
	syncAt := p.now()
	gen := p.gen.Load()
	res, err := p.cfg.Store.SyncUser(ctx, session.Profile{
		ID:        claims.UserID,
		Email:     profile.Email,
		Name:      profile.FullName(),
		FirstName: profile.FirstName,
		LastName:  profile.LastName,
		Orgs:      orgIDs(orgs),
	}, groups, syncAt)
	if errors.Is(err, session.ErrInvalid) {
		// The store refuses what IMS sent (a group name over its length
		// limit, more groups than it keeps): the answer is unusable, and
		// calling it a store outage would send the operator to the wrong
		// place and the client into retries that cannot succeed.
		return nil, badAnswer(fmt.Errorf("sync user: %w: %w", ims.ErrBadAnswer, err))
	}
	if err != nil {
		return nil, storeUnavailable(fmt.Errorf("sync user: %w", err))
	}
	if res.User.Disabled {
		// Disabled while IMS was asked: the sync is kept, the sign-in is not.
		return nil, disabled(res.User.ID)
	}
	p.remember(res.User, syncAt, gen)
	p.release(claims.UserID)
	p.log.Info("user synced",
		zap.String("user", claims.UserID), zap.Bool("created", res.Created),
		zap.Strings("groups_added", res.Added), zap.Strings("groups_removed", res.Removed))
	if (len(res.Added) > 0 || len(res.Removed) > 0) && p.cfg.OnSync != nil {
		p.cfg.OnSync(claims.UserID)
	}
	return res.User, nil
}

// getUser reads the user from the store and, if their sync is fresh,
// caches them.
func (p *Provisioner) getUser(ctx context.Context, id string) (*session.User, error) {
	readAt := p.now() // before the read: the entry is never trusted too long
	gen := p.gen.Load()
	u, err := p.cfg.Store.GetUser(ctx, id)
	if err == nil && !u.Disabled && p.Fresh(u) {
		p.remember(u, readAt, gen)
	}
	return u, err
}

// Forget drops the cached user with the given id, so that the next
// Ensure reads the store: the caller learned that the user changed there
// (the store refused them a login token as disabled).
func (p *Provisioner) Forget(id string) {
	p.users.Delete(id)
}

// cached returns the cached user with the given id if the entry is younger
// than CacheTTL and the user's sync is fresh, else nil.
func (p *Provisioner) cached(id string) *session.User {
	if p.cfg.CacheTTL <= 0 {
		return nil
	}
	c, ok := p.users.Get(id)
	if !ok {
		return nil
	}
	now := p.now()
	if now.Sub(c.readAt) >= p.cfg.CacheTTL || now.Sub(c.u.SyncedAt) >= p.cfg.SyncInterval {
		return nil // left in place: the next read or sync replaces it
	}
	return c.u
}

// remember caches u as read (or synced) at readAt, unless the cache holds
// a user of a later sync, or one read later (a read that started before a
// sync must not replace what the sync wrote), or Changed ran since the
// read started (gen).
func (p *Provisioner) remember(u *session.User, readAt time.Time, gen uint64) {
	if p.cfg.CacheTTL <= 0 || u == nil {
		return
	}
	p.users.Update(u.ID, func(old cachedUser, ok bool) (cachedUser, bool) {
		if p.gen.Load() != gen {
			return old, false
		}
		if ok && (u.SyncedAt.Before(old.u.SyncedAt) ||
			(u.SyncedAt.Equal(old.u.SyncedAt) && readAt.Before(old.readAt))) {
			return old, false
		}
		return cachedUser{u: u, readAt: readAt}, true
	})
}

// checkOrgs refuses an organizations answer whose entries for the
// configured organization are incomplete (a group without a name, groups
// that are not an array), and one with an entry that might be that
// organization but cannot be told (no ident, or its ident without an
// authSrc): syncing from it could drop or misname the user's groups.
// Incomplete entries of other organizations are left out of the user's
// organization ids instead (orgIDs).
func (p *Provisioner) checkOrgs(orgs []ims.Organization) error {
	if p.cfg.Org == "" {
		return nil
	}
	ident := p.cfg.Org
	if i := strings.LastIndexByte(ident, '@'); i >= 0 {
		ident = ident[:i]
	}
	for i := range orgs {
		o := &orgs[i]
		if o.ID() == p.cfg.Org || o.OrgRef.Ident == "" || (o.OrgRef.Ident == ident && o.OrgRef.AuthSrc == "") {
			if err := o.Problem(); err != nil {
				return err
			}
		}
	}
	return nil
}

// groups returns the local groups for the configured organization's
// memberships.
func (p *Provisioner) groups(orgs []ims.Organization) []string {
	if p.cfg.Org == "" {
		return nil
	}
	var gs []ims.Group
	for i := range orgs {
		if orgs[i].ID() == p.cfg.Org {
			gs = append(gs, orgs[i].Groups...)
		}
	}
	return p.cfg.Mapping.Map(gs)
}

func orgIDs(orgs []ims.Organization) []string {
	ids := make([]string, 0, len(orgs))
	for i := range orgs {
		if orgs[i].OrgRef.Ident != "" && orgs[i].OrgRef.AuthSrc != "" {
			ids = append(ids, orgs[i].ID())
		}
	}
	return ids
}

// badAnswer is the client's answer when the identity service answered
// with something that cannot be used. The cause names the member at fault
// and is logged with the refusal.
func badAnswer(err error) error {
	return auth.ServiceError("the identity service sent an answer that cannot be used to set up your account; retry later or contact the administrator", err)
}

// disabled is the refusal of a user an administrator disabled.
func disabled(userID string) error {
	return auth.UserDisabled(fmt.Errorf("user %s: %w", userID, session.ErrUserDisabled))
}

func storeUnavailable(err error) error {
	return auth.StoreUnavailable("sign-in", err)
}

// Changed applies a change notified by the store (session.Notifier): a
// changed user is read from the store again at their next sign-in, and
// ChangeAll (or a kind this Provisioner does not know) empties the cache.
func (p *Provisioner) Changed(c session.Change) {
	switch c.Kind {
	case session.ChangeUser:
		p.gen.Add(1)
		p.users.Delete(c.ID)
	case session.ChangeToken, session.ChangeUserTokens, session.ChangeSetting, session.ChangeLost:
		// Nothing cached here depends on them.
	default:
		p.gen.Add(1)
		p.users.Clear()
	}
}
