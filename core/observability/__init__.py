"""Operating Keel: Prometheus metrics (metrics.py), structured logs (logs.py), the job hooks (hooks.py)."""
