"""Stages: the episode runtime (script -> speech -> video), its worker pools and drawers."""
