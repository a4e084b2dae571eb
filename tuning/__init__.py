"""Pure ML code for Keel: row parsing, data, LoRA SFT, evaluation, safety masks and realignment.

Nothing in this package imports web, database or queue code (api, core, workers, models_store, sqlalchemy,
celery, fastapi); the worker adapts between the job row and these functions. Importing the package (or
``tuning.rows``, ``tuning.plan``, ``tuning.specs``, ``tuning.safety.registry``) does not load torch.
"""

import os

# OpenMP threads that wait for work sleep instead of spinning. libgomp (torch's CPU wheels) spins by default,
# which on a CPU shared with another busy process (a second worker, the API, a test runner) makes both crawl:
# 20 testbed training steps took 131.6 s with two spinning threads on a loaded 2-core host and 9.2 s with
# passive ones (bench/omp_wait.py measures it as a ratio). Read when torch loads libgomp, so this must run
# before ``import torch``: every Keel entry point imports ``tuning`` first. An operator's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
