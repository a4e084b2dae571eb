"""The repair ladder's all-rows rungs are one training run evaluated after each epoch: rung k resumes rung
k-1's checkpoint (one epoch of work), and ends exactly where an uninterrupted run of the same length is."""

from __future__ import annotations

import pytest
import torch

from tests.factories import chat_rows
from tuning.adapters import read_adapter
from tuning.interfaces import StopOnly, Stopped
from tuning.rows import normalize_row
from tuning.safety.methods.repair import RepairConfig, repair
from tuning.safety.registry import strategies


def _setup(micro):
    return [normalize_row(r) for r in chat_rows(12)], read_adapter(micro["alignment"])  # batch 4: 3 steps an epoch


def _run(micro, cfg: RepairConfig, run_dir, data, ft, progress=None):
    from tuning.modeling import load_model

    model, tok = load_model(micro["base"], device="cpu")
    return repair(model, tok, ft, {}, data, cfg, progress=progress, run_dir=str(run_dir) if run_dir else None)


def test_rungs_of_one_run_resume_each_other_and_match_an_uninterrupted_run(micro, tmp_path):
    data, ft = _setup(micro)
    rung = {k: RepairConfig(rows="all", epochs=k, run_epochs=3, batch_size=4, lr=5e-3) for k in (1, 2, 3)}
    out1, info1 = _run(micro, rung[1], tmp_path / "ladder", data, ft)
    out2, info2 = _run(micro, rung[2], tmp_path / "ladder", data, ft)
    out3, info3 = _run(micro, rung[3], tmp_path / "ladder", data, ft)
    assert [(i["repair_resumed_from_step"], i["repair_steps"]) for i in (info1, info2, info3)] == [
        (0, 3),
        (3, 3),
        (6, 3),
    ]
    whole, info = _run(micro, rung[3], tmp_path / "whole", data, ft)
    assert info["repair_resumed_from_step"] == 0 and info["repair_steps"] == 9
    for key, t in whole.state.items():
        assert torch.allclose(out3.state[key], t, atol=1e-6), key
    b = next(k for k in ft.state if "lora_B" in k)
    assert not torch.equal(out1.state[b], out2.state[b]) and not torch.equal(out2.state[b], out3.state[b])
    assert not torch.equal(out1.state[b], ft.state[b])


def test_a_cancelled_rung_raises_stopped(micro, tmp_path):
    data, ft = _setup(micro)
    cfg = RepairConfig(rows="all", epochs=1, run_epochs=3, batch_size=4)
    with pytest.raises(Stopped):
        _run(micro, cfg, tmp_path / "run", data, ft, progress=StopOnly(lambda: True))


def test_the_registry_ladder_is_neurons_then_one_three_epoch_run():
    cfgs = [s.config for s in strategies("repair")]
    assert [(c.rows, c.epochs, c.run_epochs) for c in cfgs] == [
        ("neurons", 1, 1),
        ("all", 1, 3),
        ("all", 2, 3),
        ("all", 3, 3),
    ]
    assert len({c.lr for c in cfgs[1:]}) == 1  # one run: one learning rate
