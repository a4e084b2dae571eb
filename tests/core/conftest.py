"""The running API (per backend), tenants with keys, and the micro model registered."""

from tests.fixtures.service import client, keys  # noqa: F401  (fixtures)
