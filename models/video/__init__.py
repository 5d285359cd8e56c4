"""Animators: the audio-driven 2D studio and the phoneme-to-mouth-shape tracks it uses."""
