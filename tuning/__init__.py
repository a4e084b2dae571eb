"""Pure ML code for Keel: data, LoRA SFT, evaluation, safety masks and realignment, the offline testbed.

Nothing in this package imports web, database or queue code (api, core, workers, sqlalchemy, celery,
fastapi); the worker adapts between the job row and these functions.
"""
