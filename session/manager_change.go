package session

import "go.uber.org/zap"

// Changed applies a change notified by the store (see Notifier): a
// deleted token's cache entry goes, a changed user's entries are no
// longer trusted, a change of the stored cookie keys makes RunKeyReload
// read them now, and ChangeAll (or a kind this Manager does not know)
// empties the cache. Nothing here touches the store, so the feed is never
// held up; the warm path pays nothing for it.
func (m *Manager) Changed(c Change) {
	switch c.Kind {
	case ChangeToken:
		m.drop(c.ID)
	case ChangeUser, ChangeUserTokens:
		m.ForgetUser(c.ID)
	case ChangeSetting:
		if c.ID == CookieKeysSetting {
			m.wakeKeyReload()
		}
	case ChangeLost:
		m.log.Warn("change notifications lost; reconnecting, and until then cached sessions are trusted for GATEHOUSE_SESSION_CACHE_TTL as without them",
			zap.Error(c.Err))
	default: // ChangeAll, or a kind a newer replica sent
		m.forgetAll()
		m.wakeKeyReload()
		if c.Kind == ChangeAll {
			m.log.Info("listening for change notifications; session cache emptied, since changes made meanwhile are unknown")
		}
	}
}

// wakeKeyReload makes RunKeyReload read the stored keys now. A wake-up
// already pending covers this one too.
func (m *Manager) wakeKeyReload() {
	select {
	case m.keysChanged <- struct{}{}:
	default:
	}
}

// forgetAll empties the cache, and keeps store reads already under way
// from filling it with what they read before.
func (m *Manager) forgetAll() {
	m.gen.Add(1)
	m.cache.DeleteFunc(func(_ string, e *cacheEntry) bool { e.dead.Store(true); return true })
	m.users.DeleteFunc(func(_ string, ue *userEntry) bool { ue.stale.Store(true); return true })
	m.decoded.Clear()
}
