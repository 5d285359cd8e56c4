"""Observability: pricing, spans turned into metrics, the Prometheus collector and the dashboard."""
