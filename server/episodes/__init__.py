"""Live episodes: their lifecycle, the admission queue, restore after a restart, and the store."""
