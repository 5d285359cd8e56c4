"""Plan: which tier and how many drawing workers each segment gets, from measured profiles."""
