package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-proxy/gatehouse/session"
)

// Store operations, the op label of the store families: the
// session.Store methods.
var storeOps = [...]string{
	"GetUser", "SyncUser", "CreateLoginToken", "GetLoginTokenWithUser", "ExtendLoginToken",
	"DeleteLoginToken", "DeleteExpiredLoginTokens", "ListUsers", "FindUsersByEmail", "SetUserDisabled",
	"MarkUserForResync", "ListLoginTokens", "DeleteLoginTokensOfUser", "GetOrCreateSetting", "GetSetting",
	"CompareAndSwapSetting", "Ping",
}

const (
	opGetUser = iota
	opSyncUser
	opCreateLoginToken
	opGetLoginTokenWithUser
	opExtendLoginToken
	opDeleteLoginToken
	opDeleteExpiredLoginTokens
	opListUsers
	opFindUsersByEmail
	opSetUserDisabled
	opMarkUserForResync
	opListLoginTokens
	opDeleteLoginTokensOfUser
	opGetOrCreateSetting
	opGetSetting
	opCompareAndSwapSetting
	opPing
	numOps
)

type storeMetrics struct {
	durations [numOps]prometheus.Observer
	errors    [numOps]prometheus.Counter
}

func newStoreMetrics(f factory) *storeMetrics {
	dur := f.histogramVec("store_call_duration_seconds",
		"Time of calls to the store (GATEHOUSE_STORE), by operation.", storeBuckets, "op")
	errs := f.counterVec("store_errors_total",
		"Calls to the store that failed, by operation. Not found and refused input are answers, not failures, and are not counted.", "op")
	m := &storeMetrics{}
	for i, op := range storeOps {
		m.durations[i] = dur.WithLabelValues(op)
		m.errors[i] = errs.WithLabelValues(op)
	}
	return m
}

// signinCounters are what bearer sign-ins changed in the store: read from
// the answers of SyncUser, which only sign-in calls while serving.
type signinCounters struct {
	created, synced, added, removed prometheus.Counter
}

func newSigninCounters(f factory) signinCounters {
	return signinCounters{
		created: f.counter("signin_users_created_total", "Users provisioned by their first sign-in."),
		synced:  f.counter("signin_syncs_total", "Syncs of a user's profile and groups from IMS at sign-in."),
		added:   f.counter("signin_groups_added_total", "IMS group memberships added by sign-in syncs."),
		removed: f.counter("signin_groups_removed_total", "IMS group memberships removed by sign-in syncs."),
	}
}

// Store returns s, instrumented: each call is timed and its failures
// counted, and the sign-in families read SyncUser's answers. A store that
// sends change notifications (session.Notifier) still does.
func (m *Metrics) Store(s session.Store) session.Store {
	is := &store{next: s, m: m.store, signins: m.signins}
	if n, ok := s.(session.Notifier); ok {
		return &notifyingStore{is, n}
	}
	return is
}

type notifyingStore struct {
	*store
	session.Notifier
}

type store struct {
	next    session.Store
	m       *storeMetrics
	signins signinCounters
}

var (
	_ session.Store    = (*store)(nil)
	_ session.Notifier = (*notifyingStore)(nil)
)

// done observes a call of op that started at start and failed with *err
// (nil: it did not). Deferred by every method, with the error result.
func (s *store) done(op int, start time.Time, err *error) {
	s.m.durations[op].Observe(time.Since(start).Seconds())
	if e := *err; e != nil && !errors.Is(e, session.ErrNotFound) && !errors.Is(e, session.ErrInvalid) &&
		!errors.Is(e, session.ErrUserDisabled) {
		s.m.errors[op].Inc()
	}
}

func (s *store) GetUser(ctx context.Context, id string) (_ *session.User, err error) {
	defer s.done(opGetUser, time.Now(), &err)
	return s.next.GetUser(ctx, id)
}

func (s *store) SyncUser(ctx context.Context, p session.Profile, imsGroups []string, now time.Time) (_ *session.SyncResult, err error) {
	defer s.done(opSyncUser, time.Now(), &err)
	r, err := s.next.SyncUser(ctx, p, imsGroups, now)
	if err == nil {
		s.signins.synced.Inc()
		if r.Created {
			s.signins.created.Inc()
		}
		s.signins.added.Add(float64(len(r.Added)))
		s.signins.removed.Add(float64(len(r.Removed)))
	}
	return r, err
}

func (s *store) CreateLoginToken(ctx context.Context, t *session.LoginToken) (err error) {
	defer s.done(opCreateLoginToken, time.Now(), &err)
	return s.next.CreateLoginToken(ctx, t)
}

func (s *store) GetLoginTokenWithUser(ctx context.Context, id string) (_ *session.LoginToken, _ *session.User, err error) {
	defer s.done(opGetLoginTokenWithUser, time.Now(), &err)
	return s.next.GetLoginTokenWithUser(ctx, id)
}

func (s *store) ExtendLoginToken(ctx context.Context, id string, expiresAt time.Time) (err error) {
	defer s.done(opExtendLoginToken, time.Now(), &err)
	return s.next.ExtendLoginToken(ctx, id, expiresAt)
}

func (s *store) DeleteLoginToken(ctx context.Context, id string) (err error) {
	defer s.done(opDeleteLoginToken, time.Now(), &err)
	return s.next.DeleteLoginToken(ctx, id)
}

func (s *store) DeleteExpiredLoginTokens(ctx context.Context, now time.Time) (_ int64, err error) {
	defer s.done(opDeleteExpiredLoginTokens, time.Now(), &err)
	return s.next.DeleteExpiredLoginTokens(ctx, now)
}

func (s *store) ListUsers(ctx context.Context, afterID string, limit int) (_ []session.UserSummary, err error) {
	defer s.done(opListUsers, time.Now(), &err)
	return s.next.ListUsers(ctx, afterID, limit)
}

func (s *store) FindUsersByEmail(ctx context.Context, email string) (_ []*session.User, err error) {
	defer s.done(opFindUsersByEmail, time.Now(), &err)
	return s.next.FindUsersByEmail(ctx, email)
}

func (s *store) SetUserDisabled(ctx context.Context, userID string, disabled bool) (_ int64, err error) {
	defer s.done(opSetUserDisabled, time.Now(), &err)
	return s.next.SetUserDisabled(ctx, userID, disabled)
}

func (s *store) MarkUserForResync(ctx context.Context, userID string) (err error) {
	defer s.done(opMarkUserForResync, time.Now(), &err)
	return s.next.MarkUserForResync(ctx, userID)
}

func (s *store) ListLoginTokens(ctx context.Context, userID string) (_ []*session.LoginToken, err error) {
	defer s.done(opListLoginTokens, time.Now(), &err)
	return s.next.ListLoginTokens(ctx, userID)
}

func (s *store) DeleteLoginTokensOfUser(ctx context.Context, userID string) (_ int64, err error) {
	defer s.done(opDeleteLoginTokensOfUser, time.Now(), &err)
	return s.next.DeleteLoginTokensOfUser(ctx, userID)
}

func (s *store) GetOrCreateSetting(ctx context.Context, key string, value []byte) (_ []byte, err error) {
	defer s.done(opGetOrCreateSetting, time.Now(), &err)
	return s.next.GetOrCreateSetting(ctx, key, value)
}

func (s *store) GetSetting(ctx context.Context, key string) (_ []byte, err error) {
	defer s.done(opGetSetting, time.Now(), &err)
	return s.next.GetSetting(ctx, key)
}

func (s *store) CompareAndSwapSetting(ctx context.Context, key string, old, value []byte) (_ bool, err error) {
	defer s.done(opCompareAndSwapSetting, time.Now(), &err)
	return s.next.CompareAndSwapSetting(ctx, key, old, value)
}

func (s *store) Ping(ctx context.Context) (err error) {
	defer s.done(opPing, time.Now(), &err)
	return s.next.Ping(ctx)
}

// Close is not timed: it happens once, at the end.
func (s *store) Close() error { return s.next.Close() }
