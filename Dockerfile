# The wafsmith engine image: `docker run IMAGE` runs `wafsmith run` with the API on :8080.
#
# Two stages: the first builds the wheel from the source tree; the second installs only that
# wheel (and PostgreSQL's driver) at the versions in constraints.txt into a venv: no source
# tree, no moto, no test tools. Runs as an unprivileged user.
#
# Configuration: mount a settings file at /etc/wafsmith/wafsmith.toml (the image holds the
# documented example there) and/or pass WAFSMITH_* environment variables, which win over the
# file (e.g. WAFSMITH_DATABASE_URL, WAFSMITH_SOURCE__QUEUE_URL). State (SQLite ledger when no
# database URL is set, request history, model artifacts) goes to /var/lib/wafsmith.
#
#   docker build -t wafsmith .
#   docker run -v $PWD/wafsmith.toml:/etc/wafsmith/wafsmith.toml:ro -p 8080:8080 wafsmith
#
# tests/test_packaging.py replays this file's install step and HEALTHCHECK in a fresh venv.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY engine ./engine
COPY api ./api
COPY models ./models
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/wafsmith/bin:$PATH \
    WAFSMITH_DATA_DIR=/var/lib/wafsmith \
    WAFSMITH_API__HOST=0.0.0.0 \
    WAFSMITH_API__PORT=8080

RUN useradd --system --create-home --uid 10001 wafsmith \
    && mkdir -p /var/lib/wafsmith /etc/wafsmith \
    && chown wafsmith /var/lib/wafsmith

COPY --from=build /dist /tmp/dist
COPY constraints.txt /tmp/constraints.txt
RUN python -m venv /opt/wafsmith \
    && /opt/wafsmith/bin/pip install --no-cache-dir -c /tmp/constraints.txt "$(echo /tmp/dist/wafsmith-*.whl)[postgres]" \
    && rm -rf /tmp/dist /tmp/constraints.txt
COPY data/config/wafsmith.example.toml /etc/wafsmith/wafsmith.toml

USER wafsmith
WORKDIR /var/lib/wafsmith
EXPOSE 8080
# Healthy = the API answers, the ledger answers and the engine loop's heartbeat is recent
# (loop.heartbeat_max_age_s); the start period covers start-up and the first status.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["wafsmith"]
CMD ["run", "--config", "/etc/wafsmith/wafsmith.toml"]
