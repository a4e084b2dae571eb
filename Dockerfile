# Keel images, one Dockerfile, three stages that matter:
#   base    python:3.11-slim, the non-root `keel` user (uid/gid 10001) and the data paths. Both runtime
#           images start here, so the store volume they share has one owner.
#   worker  GPU worker: torch==2.13.0 from the TORCH_INDEX wheel index (CUDA by default) + `keel[worker]`.
#   api     API, migrations and `keel bootstrap`: base dependencies only, no torch. The compose file's
#           `migrate` one-shot and `api` run this same image. Last stage, so a plain `docker build .` is the API.
# Keel itself is built once as a wheel (stage `wheel`) and installed non-editable: no source tree ships.
#
#   docker build --target api -t keel-api:local .
#   docker build --target worker -t keel-worker:local .                                  # CUDA wheel
#   docker build --target worker --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t keel-worker:cpu .

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KEEL_DATA_DIR=/var/lib/keel \
    KEEL_STORE_DIR=/var/lib/keel/store \
    KEEL_TESTBED_DIR=/var/lib/keel/testbed
RUN groupadd --system --gid 10001 keel \
 && useradd --system --uid 10001 --gid keel --create-home --home-dir /home/keel --shell /usr/sbin/nologin keel \
 && mkdir -p /var/lib/keel /models \
 && chown keel:keel /var/lib/keel
WORKDIR /home/keel

FROM base AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels . && ls /wheels

FROM base AS worker
# A CUDA build of torch; the wheel bundles the CUDA runtime, the host needs only the NVIDIA driver and
# the container toolkit. Installed first so this big layer is cached across Keel code changes.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0
COPY --from=wheel /wheels /tmp/wheels
# torch==2.13.0 in the `worker` extra is already satisfied by the CUDA build above (local version +cuXXX).
# The wheel is Keel's own, built above, and its dependencies are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN whl="$(ls /tmp/wheels/keel-*.whl)" && pip install "${whl}[worker]" && rm -rf /tmp/wheels \
 && python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
COPY deploy/worker_healthcheck.py /usr/local/lib/keel/worker_healthcheck.py
USER 10001:10001
# Cheap and true while a job runs; see deploy/worker_healthcheck.py for why not `celery inspect ping`.
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
  CMD ["python", "/usr/local/lib/keel/worker_healthcheck.py"]
# Celery warm shutdown on SIGTERM; give it time (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["keel", "worker"]

FROM base AS api
COPY --from=wheel /wheels /tmp/wheels
RUN pip install /tmp/wheels/keel-*.whl && rm -rf /tmp/wheels \
 && if python -c "import torch" 2>/dev/null; then echo "torch must not be in the api image" >&2; exit 1; fi
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
