"""Structural promises of docker-compose.yml and the Dockerfile (issue #7), checked without a Docker daemon.

.ci/check-compose validates the compose file against the Compose Specification schema; these tests check
what a schema cannot: one GPU per worker, shutdown and restart policy, the bootstrap secret, one build per
image, cross-references, and that the API image never installs torch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CI_OVERRIDE = ROOT / "deploy" / "compose.ci.yml"
ADMIN_KEY_PATH = "/run/secrets/keel_admin_key"
LONG_RUNNING = "unless-stopped"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the `<<: *anchor` merge keys


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _command(svc: dict[str, Any]) -> str:
    cmd = svc.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def _gpu_devices(svc: dict[str, Any]) -> list[dict[str, Any]]:
    devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return [d for d in devices if "gpu" in d.get("capabilities", [])]


def _workers() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if re.search(r"\bkeel worker\b", _command(svc))}


def _seconds(duration: str) -> float:
    """Compose duration ('60s', '1m30s', '1h') in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), f"not a duration: {duration!r}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)


def _env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


# --- Dockerfile ---------------------------------------------------------------------------------------


def _stages() -> dict[str, dict[str, Any]]:
    """Stage name -> {'from': parent image or stage, 'instructions': [(KEYWORD, args)]}."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert m, line
            current = {"from": m.group(1), "instructions": []}
            stages[m.group(2) or f"#{len(stages)}"] = current
        elif current is not None:
            current["instructions"].append((keyword, args.strip()))
    return stages


def _chain(stages: dict[str, dict[str, Any]], name: str) -> list[str]:
    out = [name]
    while stages[out[-1]]["from"] in stages:
        out.append(stages[out[-1]]["from"])
    return out


def _pip_installs(stage: dict[str, Any]) -> list[str]:
    cmds = []
    for keyword, args in stage["instructions"]:
        if keyword == "RUN":
            cmds += [c.strip() for c in re.split(r"&&|;|\|\|", args) if re.search(r"\bpip3? install\b", c)]
    return cmds


def _user(stages: dict[str, dict[str, Any]], name: str) -> str | None:
    for stage in _chain(stages, name):
        users = [args for keyword, args in stages[stage]["instructions"] if keyword == "USER"]
        if users:
            return users[-1]
    return None


def test_dockerfile_has_api_and_worker_targets_on_one_base():
    stages = _stages()
    assert {"api", "worker"} <= stages.keys()
    api_chain, worker_chain = _chain(stages, "api"), _chain(stages, "worker")
    shared = set(api_chain) & set(worker_chain)
    assert shared, f"api {api_chain} and worker {worker_chain} share no stage"
    base = api_chain[-1]
    assert re.match(r"(\$\{PYTHON_IMAGE\}|python:3\.11-slim)", stages[base]["from"])
    if stages[base]["from"].startswith("${"):
        assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", DOCKERFILE.read_text(), re.MULTILINE)


def test_api_image_never_installs_torch():
    stages = _stages()
    for stage in _chain(stages, "api"):
        for cmd in _pip_installs(stages[stage]):
            assert "torch" not in cmd and "[worker" not in cmd, f"stage {stage}: {cmd}"
            assert "-e " not in cmd and "--editable" not in cmd, f"stage {stage} installs editable: {cmd}"
        assert not any("TORCH_INDEX" in args for _, args in stages[stage]["instructions"]), stage


def test_worker_image_installs_cuda_torch_and_worker_extra():
    stages = _stages()
    worker = stages["worker"]
    assert any(k == "ARG" and a.startswith("TORCH_INDEX") for k, a in worker["instructions"])
    installs = _pip_installs(worker)
    assert any("TORCH_INDEX" in c and "torch==2.13.0" in c for c in installs), installs
    assert any("[worker]" in c for c in installs), installs


@pytest.mark.parametrize("target", ["api", "worker"])
def test_images_run_as_non_root(target):
    user = _user(_stages(), target)
    assert user is not None and user.split(":")[0] not in {"root", "0"}, f"{target} runs as {user!r}"


def test_api_image_has_healthcheck():
    assert any(k == "HEALTHCHECK" and "/healthz" in a for k, a in _stages()["api"]["instructions"])


def test_build_context_excludes_secrets_and_models():
    ignored = {line.strip().strip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"secrets", "models", ".git", ".venv"} <= ignored


# --- docker-compose.yml --------------------------------------------------------------------------------


def test_there_is_one_worker_service_per_gpu():
    workers = _workers()
    assert len(workers) >= 2, "expected the per-GPU template to show at least two workers"
    ids = []
    for name, svc in workers.items():
        devices = _gpu_devices(svc)
        assert len(devices) == 1, f"{name}: {devices}"
        dev = devices[0]
        assert "count" not in dev, f"{name}: pin a device with device_ids, not count"
        assert len(dev.get("device_ids", [])) == 1, f"{name}: exactly one GPU per worker: {dev}"
        gpu = str(dev["device_ids"][0])
        assert name == f"worker-gpu{gpu}", f"{name} reserves GPU {gpu}"
        ids.append(gpu)
    assert len(ids) == len(set(ids)), f"two workers share a GPU: {ids}"
    names = [_env(svc).get("KEEL_WORKER_NAME") for svc in workers.values()]
    assert all(names) and len(set(names)) == len(names), names


def test_workers_shut_down_warm_restart_and_report_health():
    for name, svc in _workers().items():
        assert svc.get("restart") == LONG_RUNNING, name
        assert svc.get("stop_signal") == "SIGTERM", name
        assert _seconds(svc.get("stop_grace_period", "10s")) >= 60, name
        hc = svc.get("healthcheck", {})
        assert hc.get("test") and not hc.get("disable"), f"{name}: no healthcheck"
        assert "inspect ping" not in " ".join(hc["test"]), f"{name}: solo pool can't answer while busy"
        deps = svc.get("depends_on", {})
        assert deps.get("migrate", {}).get("condition") == "service_completed_successfully", name


def test_gpu_workers_train_on_cuda_so_their_healthcheck_requires_the_gpu():
    for name, svc in _workers().items():
        if _gpu_devices(svc):
            assert _env(svc).get("KEEL_DEVICE") == "cuda", f"{name}: a GPU worker must not fall back to CPU"


class _CILoader(yaml.SafeLoader):
    """Understands Compose's `!reset` tag (a value the override removes)."""


_CILoader.add_constructor("!reset", lambda loader, node: "!reset")


def test_ci_override_only_switches_the_worker_to_the_cpu_wheel_and_drops_its_gpu():
    ci = yaml.load(CI_OVERRIDE.read_text(), Loader=_CILoader)
    assert set(ci) == {"services"}, "the CI override may only touch services"
    assert set(ci["services"]) == {"worker-gpu0"}, "only the worker is switched"
    worker = ci["services"]["worker-gpu0"]
    assert set(worker) == {"build", "environment", "deploy"}, worker
    assert worker["deploy"] == "!reset", "the GPU reservation is dropped"
    assert worker["environment"] == {"KEEL_DEVICE": "cpu"}
    assert set(worker["build"]) == {"args"} and set(worker["build"]["args"]) == {"TORCH_INDEX"}
    assert "/whl/cpu" in worker["build"]["args"]["TORCH_INDEX"]
    assert _gpu_devices(_services()["worker-gpu0"]), "the real file still reserves the GPU"


def test_compose_e2e_is_wired_into_ci():
    script = ROOT / ".ci" / "compose-e2e"
    assert script.exists() and os.access(script, os.X_OK)
    text = script.read_text()
    assert "-f docker-compose.yml -f deploy/compose.ci.yml" in text
    assert ".ci/compose-e2e" in (ROOT / ".ci" / "run").read_text()


def test_long_running_services_restart_unless_stopped():
    for name, svc in _services().items():
        if svc.get("restart") == "no" or svc.get("profiles"):
            continue  # one-shots
        assert svc.get("restart") == LONG_RUNNING, f"{name}: restart={svc.get('restart')!r}"
    for name in ("postgres", "redis", "api"):
        assert _services()[name].get("restart") == LONG_RUNNING, name


def test_migrate_migrates_then_bootstraps_with_the_admin_key_secret():
    svcs = _services()
    migrate = svcs["migrate"]
    cmd = _command(migrate)
    assert "keel migrate" in cmd and "keel bootstrap" in cmd, cmd
    assert cmd.index("keel migrate") < cmd.index("keel bootstrap"), cmd
    assert f"--admin-key-file {ADMIN_KEY_PATH}" in cmd, cmd
    assert migrate.get("restart") == "no"
    assert "keel_admin_key" in [s if isinstance(s, str) else s["source"] for s in migrate.get("secrets", [])]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", *_workers()):
        assert svcs[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_admin_key_secret_is_a_gitignored_file():
    secret = _compose()["secrets"]["keel_admin_key"]
    m = re.fullmatch(r"\$\{KEEL_ADMIN_KEY_FILE:-(\./secrets/[\w.-]+)\}|(\./secrets/[\w.-]+)", secret["file"])
    assert m, secret
    gitignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "/secrets/" in gitignore or "secrets/" in gitignore


def test_api_and_migrate_share_one_image_built_once():
    svcs = _services()
    assert svcs["api"]["image"] == svcs["migrate"]["image"]
    built = [n for n in ("api", "migrate") if "build" in svcs[n]]
    assert len(built) == 1, f"build the API image once, not in {built}"
    assert svcs[built[0]]["build"]["target"] == "api"


def test_each_local_image_is_built_by_exactly_one_service_and_never_pulled():
    svcs = _services()
    stages = _stages()
    by_image: dict[str, list[str]] = {}
    for name, svc in svcs.items():
        if "build" in svc:
            assert "image" in svc, f"{name}: name the built image so others can share it"
            assert svc["build"].get("target") in stages, f"{name}: unknown target {svc['build'].get('target')}"
            assert svc.get("pull_policy") == "build", f"{name}: a local image must not be pulled"
        if "image" in svc:
            by_image.setdefault(svc["image"], []).append(name)
    for image, users in by_image.items():
        builders = [n for n in users if "build" in svcs[n]]
        if not builders:
            continue  # a registry image (postgres, redis)
        assert len(builders) == 1, f"{image} is built by {builders}"
        for n in users:
            if n not in builders:
                assert svcs[n].get("pull_policy") == "never", f"{n} would try to pull {image}"
    worker_images = {svc["image"] for svc in _workers().values()}
    assert len(worker_images) == 1, worker_images
    (builder,) = [n for n in by_image[worker_images.pop()] if "build" in svcs[n]]
    assert svcs[builder]["build"]["target"] == "worker"
    assert "TORCH_INDEX" in svcs[builder]["build"].get("args", {})


def test_cross_references_resolve():
    doc = _compose()
    svcs = doc["services"]
    secrets, volumes = set(doc.get("secrets", {})), set(doc.get("volumes", {}))
    for name, svc in svcs.items():
        for s in svc.get("secrets", []):
            assert (s if isinstance(s, str) else s["source"]) in secrets, f"{name}: undefined secret {s}"
        for v in svc.get("volumes", []):
            source = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
            if source and not source.startswith(("/", ".", "$", "~")):
                assert source in volumes, f"{name}: undefined volume {source}"
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in svcs, f"{name} depends on undefined {dep}"
            assert not svcs[dep].get("profiles") or svc.get("profiles"), f"{name} depends on optional {dep}"


def _tool(name: str) -> str | None:
    local = ROOT / ".venv" / "bin" / name
    return str(local) if local.exists() else shutil.which(name)


def test_check_compose_script_is_executable():
    script = ROOT / ".ci" / "check-compose"
    assert script.exists() and os.access(script, os.X_OK)


@pytest.mark.skipif(_tool("check-jsonschema") is None, reason="check-jsonschema not installed")
def test_compose_schema_accepts_ours_and_rejects_a_typo(tmp_path):
    cj = _tool("check-jsonschema")
    ok = subprocess.run(
        [cj, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_perod:"))
    bad = subprocess.run(
        [cj, "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode != 0 and "stop_grace_perod" in bad.stdout, bad.stdout + bad.stderr
