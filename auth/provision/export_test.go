package provision

// CacheLen returns the number of users in the cache, trusted or not.
func (p *Provisioner) CacheLen() int { return p.users.Len() }
