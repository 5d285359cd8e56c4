"""Admission: whether a new episode may start now, from what episodes really cost here."""
