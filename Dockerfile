# syntax=docker/dockerfile:1
# The API node image: `leaderboard serve` as a non-root user. Multi-stage: the build stage
# builds the wheel and installs it into a virtualenv WITHOUT extras (no embedded PostgreSQL or
# Valkey: those are the dev extra), exactly as .ci/fresh_install.py builds and tests it; the
# runtime stage copies only the virtualenv.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY app ./app
COPY lua ./lua
COPY sql ./sql
RUN /opt/venv/bin/pip wheel --no-deps -w /wheels . \
 && /opt/venv/bin/pip install /wheels/leaderboard-*.whl

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin leaderboard
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000
USER leaderboard
EXPOSE 3000
# Liveness only: /readyz (PostgreSQL, Redis, schema) is for the balancer and orchestrator.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=2)"]
# SIGTERM: stop accepting, close WebSockets with 1001, finish requests, release the reconcile
# lock, close pools (compose gives it stop_grace_period to do so).
STOPSIGNAL SIGTERM
CMD ["leaderboard", "serve"]
