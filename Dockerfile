# Renkei services image (ingest, gateway agent) for docker-compose.yml.
FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY renkei ./renkei
COPY edge ./edge
COPY cloud ./cloud
COPY models ./models
COPY firmware-config ./firmware-config
RUN uv sync --frozen --no-dev --extra cloud && rm -rf /root/.cache
ENV PATH="/app/.venv/bin:$PATH"
USER nobody
ENTRYPOINT []
