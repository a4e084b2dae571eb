# Keel image: one image for api, worker and migrate (the compose file picks the command).
# Build arg TORCH_INDEX selects the torch wheel index: CPU by default; a CUDA index for GPU workers.
FROM python:3.11-slim AS base
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    KEEL_DATA_DIR=/var/lib/keel KEEL_STORE_DIR=/var/lib/keel/store
WORKDIR /app
RUN pip install --index-url ${TORCH_INDEX} torch==2.13.0
COPY pyproject.toml ./
COPY api ./api
COPY core ./core
COPY workers ./workers
COPY tuning ./tuning
COPY testbed ./testbed
COPY models_store ./models_store
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install -e . && useradd --create-home keel && mkdir -p /var/lib/keel && chown keel /var/lib/keel
USER keel
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
