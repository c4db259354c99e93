package provision

// CacheLen returns the number of users in the cache, trusted or not.
func (p *Provisioner) CacheLen() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.users)
}
