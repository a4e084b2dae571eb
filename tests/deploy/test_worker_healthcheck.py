"""deploy/worker_healthcheck.py: healthy when nothing is configured to reach, unhealthy on a dead dependency."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "worker_healthcheck.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_embedded_settings_are_healthy():
    assert _run({}).returncode == 0


def test_unreachable_database_and_broker_are_unhealthy():
    port = _free_port()
    out = _run(
        {
            "KEEL_DATABASE_URL": f"postgresql+psycopg://k:k@127.0.0.1:{port}/k",
            "KEEL_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        }
    )
    assert out.returncode == 1
    assert "database 127.0.0.1" in out.stderr and "broker 127.0.0.1" in out.stderr, out.stderr


def test_gpu_check_reports_a_failing_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    fake.chmod(0o755)
    spec = importlib.util.spec_from_file_location("worker_healthcheck", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = mod.check_gpu()
    assert problem and "No devices were found" in problem


def _fake_smi(tmp_path: Path, script: str) -> Path:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(script)
    fake.chmod(0o755)
    return tmp_path


def test_cpu_worker_is_healthy_without_a_gpu_even_where_nvidia_smi_fails(tmp_path):
    bin_dir = _fake_smi(tmp_path, "#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    out = _run({"KEEL_DEVICE": "cpu", "PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr


def test_cuda_worker_whose_container_has_no_nvidia_smi_is_unhealthy(tmp_path):
    # PATH without any nvidia-smi: the container was started without its GPU
    out = _run({"KEEL_DEVICE": "cuda", "PATH": str(tmp_path)})
    assert out.returncode == 1
    assert "KEEL_DEVICE=cuda" in out.stderr and "nvidia-smi" in out.stderr, out.stderr


def test_cuda_worker_with_its_gpu_is_healthy(tmp_path):
    bin_dir = _fake_smi(tmp_path, "#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-0)'\n")
    assert _run({"KEEL_DEVICE": "cuda:0", "PATH": f"{bin_dir}:/usr/bin:/bin"}).returncode == 0
