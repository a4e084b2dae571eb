"""bench/memory.py's quick mode on the tiny model: each point in its own capped subprocess, Keel's micro-batches
within the budget, and a point past the cap reported as such instead of taking the machine down."""

from __future__ import annotations

from bench import memory


def test_memory_bench_measures_keel_and_the_baseline_in_capped_subprocesses(tiny, tmp_path):
    out = tmp_path / "table.json"
    args = ["--quick", "--model", tiny["base"], "--lengths", "200", "--batch-size", "4", "--json", str(out)]
    (point,) = memory.main([*args, "--budget", "256", "--device", "cpu", "--threads", "1"])
    keel, trainer = point["keel"], point["trainer"]
    assert keel["steps"] == trainer["steps"] == 1, point
    assert keel["micro_batches"] == 4 and keel["max_micro_batch_tokens"] == 200  # one 200-token row per micro-batch
    assert 0 < keel["loaded_rss"] < keel["peak_rss"] and point["estimate"] > 0 and out.exists()
    (capped,) = memory.main([*args, "--which", "keel", "--cap-gb", "0.05", "--device", "cpu"])
    assert capped["keel"]["error"].startswith("exceeded cap")
