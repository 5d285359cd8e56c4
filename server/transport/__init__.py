"""Transports: WebRTC viewers and the fragmented-MP4 fallback, both reading one playout buffer."""
