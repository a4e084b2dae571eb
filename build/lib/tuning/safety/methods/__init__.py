"""Realignment methods, one module each: pure functions (fine-tuned Adapter, alignment Adapter, masks, typed
config from :mod:`tuning.safety.registry`) → (Adapter, info). Every one keeps the adapter's keys, shapes, rank
and config, so the output is a drop-in PEFT LoRA.

``info`` always has ``modules_changed``, ``neurons_changed`` and ``per_module_similarity`` (see
:func:`tuning.safety.common.change_info`).
"""
