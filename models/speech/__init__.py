"""Speech synthesisers: Piper with phoneme alignments."""
