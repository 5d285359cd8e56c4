"""Tests of the offline fleet planner (fleet/)."""
