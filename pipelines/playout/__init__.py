"""Playout: the one media clock, the playout buffer, frames, the MP4 archive and transcripts."""
