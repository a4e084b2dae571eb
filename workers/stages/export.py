"""Export stage: the realigned adapter as the job's downloadable bundle (once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.jobs.states import Stage
from core.results.states import ArtifactKind
from workers.context import JobContext
from workers.stages.common import artifact_key, bundle_adapter, set_stage


def export(ctx: JobContext, adapter_dir: Path, report: dict[str, Any]) -> None:
    if artifact_key(ctx.job_id, ArtifactKind.ADAPTER) is not None:
        return
    set_stage(ctx, Stage.EXPORTING, 95.0, "Exporting the realigned adapter")
    bundle_adapter(
        ctx,
        ArtifactKind.ADAPTER,
        adapter_dir,
        {
            "variant": "realigned",
            "released_unrealigned": bool(report.get("released_unrealigned")),
            "realignment": {
                k: report.get(k)
                for k in ("method", "strength", "mask", "before", "after", "passed", "unrealigned_reason")
            },
        },
    )
