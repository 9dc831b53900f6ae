"""Session stores that keep sessions outside the daemon's process (the in-memory store is sessions.store)."""
