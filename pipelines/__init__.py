"""Episode runtime: workflow and deployment config, segmenting, scheduling, the media clock."""
