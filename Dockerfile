# The app image of docker-compose.yml: `engagement` (migrate | serve | scheduler | run-job | demo).
FROM python:3.11-slim AS build
WORKDIR /src
# The locked versions and hashes (requirements.lock, `make lock`): nothing is resolved here.
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --require-hashes --no-deps --wheel-dir /wheels -r requirements.lock \
    && pip install --no-cache-dir --require-hashes --no-deps --no-index --find-links /wheels \
       -r requirements.lock
COPY pyproject.toml README.md ./
COPY engagement ./engagement
COPY service ./service
COPY scheduler ./scheduler
COPY cli ./cli
COPY sql ./sql
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels/project .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
COPY requirements.lock /tmp/
RUN pip install --require-hashes --no-deps --no-index --find-links /wheels -r /tmp/requirements.lock \
    && pip install --no-deps --no-index /wheels/project/*.whl && rm -rf /wheels /tmp/requirements.lock \
    && useradd --system --uid 10001 --user-group --home-dir /app --create-home engagement
USER engagement
WORKDIR /app
# 8000: the HTTP service and its /metrics; 9100: the scheduler's /metrics.
EXPOSE 8000 9100
CMD ["engagement", "serve", "--host", "0.0.0.0"]
