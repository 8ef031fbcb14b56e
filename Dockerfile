# Renkei services image for docker-compose.yml: ingest, API, disruption watcher, rollout
# controller, simulated gateways and the secrets check. Dependencies are installed exactly
# as locked in uv.lock (core + the "cloud" extra: FastAPI, SQLAlchemy, psycopg, ...).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

RUN pip install --no-cache-dir uv \
    # An unprivileged user with a fixed id; /var/lib/renkei (gateway outboxes) is created
    # here so that a new named volume mounted on it inherits this owner.
    && groupadd --system --gid 10001 renkei \
    && useradd --system --uid 10001 --gid renkei --home-dir /var/lib/renkei \
        --shell /usr/sbin/nologin renkei \
    && install -d -o renkei -g renkei -m 0750 /var/lib/renkei

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY renkei ./renkei
COPY edge ./edge
COPY cloud ./cloud
COPY models ./models
COPY dashboards ./dashboards
COPY firmware-config ./firmware-config
RUN uv sync --frozen --no-dev --no-editable --extra cloud && rm -rf /root/.cache
ENV PATH="/app/.venv/bin:$PATH"

USER renkei
ENTRYPOINT []
