"""Realignment methods, one module each, registered by one line in :mod:`tuning.safety.registry`. A module
declares ``Config`` (its typed config), ``apply(inputs, cfg) -> (Adapter, info)``, ``default(seed)`` and, if
it escalates, ``ladder(seed)``. Every method keeps the adapter's keys, shapes, rank and config, so the output is
a drop-in PEFT LoRA; the pure functions under ``apply`` (``nlsr``, ``fgsn``, ``safelora``, ``repair``) take the
adapters directly.

``info`` always has ``modules_changed``, ``neurons_changed`` and ``per_module_similarity`` (see
:func:`tuning.safety.common.change_info`).
"""
