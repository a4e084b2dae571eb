"""Pure ML code for Keel: row parsing, data, LoRA SFT, evaluation, safety masks and realignment.

Nothing in this package imports web, database or queue code (api, core, workers, models_store, sqlalchemy,
celery, fastapi); the worker adapts between the job row and these functions. Importing the package (or
``tuning.rows``, ``tuning.plan``, ``tuning.specs``, ``tuning.safety.registry``) does not load torch.
"""
