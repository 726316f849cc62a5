# Slim, non-root image of the wafsmith engine: `docker run IMAGE` runs `wafsmith run`.
#
# The engine reads its detection pattern lists from data/patterns and the demo's simulator
# from benchmarks/, so the project is installed from its tree (in place) rather than as a
# bare wheel. Mount a settings file at /etc/wafsmith/wafsmith.toml, or pass WAFSMITH_* vars.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WAFSMITH_DATA_DIR=/var/lib/wafsmith \
    WAFSMITH_API__HOST=0.0.0.0

RUN useradd --system --create-home --uid 10001 wafsmith \
    && mkdir -p /var/lib/wafsmith /etc/wafsmith \
    && chown wafsmith /var/lib/wafsmith

WORKDIR /opt/wafsmith
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY models ./models
COPY benchmarks ./benchmarks
COPY data ./data
RUN pip install -e '.[postgres,aws-standin]' \
    && cp data/config/wafsmith.example.toml /etc/wafsmith/wafsmith.toml

USER wafsmith
EXPOSE 8080
ENTRYPOINT ["wafsmith"]
CMD ["run", "--config", "/etc/wafsmith/wafsmith.toml"]
