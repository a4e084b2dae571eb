"""Operating Keel: Prometheus metrics (metrics.py) and structured logs (logs.py). Infrastructure below every
domain; core/hooks.py connects them (and webhooks) to the domains' signals (core/signals.py)."""
