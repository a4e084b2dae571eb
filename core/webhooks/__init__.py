"""Webhooks: per-tenant endpoints, Standard Webhooks signatures, deliveries with retries and a log."""
