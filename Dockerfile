# Slim, non-root image of the wafsmith engine.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY models ./models
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres,aws-standin]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 wafsmith
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER wafsmith
WORKDIR /home/wafsmith
ENV WAFSMITH_DATA_DIR=/home/wafsmith/var
EXPOSE 8080
ENTRYPOINT ["wafsmith"]
CMD ["run"]
