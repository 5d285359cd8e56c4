"""Model adapters: script writers, speech synthesisers and animators behind small protocols."""
