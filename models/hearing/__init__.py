"""Speech recognisers: the words of a viewer's spoken question (pocketsphinx)."""
