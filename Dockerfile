# Container image for the gateway: `docker compose up` (see docs/deployment.md) or
#   docker build -t email-domain-gateway . && docker run -p 127.0.0.1:8000:8000 \
#     -e DATABASE_URL=postgresql://user:password@host:5432/db email-domain-gateway

# --- build: a virtualenv in /opt/venv with the package installed from source (not editable) ---
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies first, in their own layer, so that a source change does not reinstall them:
# a stub package beside pyproject.toml is enough for pip to install everything it lists.
# (It is built in a scratch folder so no stale build/ output can reach the real wheel.)
COPY pyproject.toml /tmp/deps/pyproject.toml
RUN mkdir /tmp/deps/gql \
    && touch /tmp/deps/gql/__init__.py \
    && pip install /tmp/deps \
    && pip uninstall --yes email-domain-gateway \
    && rm -rf /tmp/deps

# The package itself: a regular wheel install, which carries the Alembic migrations
# (gql/db/migrations/env.py, versions/*.py, script.py.mako) into site-packages.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gql ./gql
RUN pip install --no-deps . \
    && pip check \
    && gql-gateway --help > /dev/null

# --- runtime: the virtualenv only, run by an unprivileged user ---
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin gateway

COPY --from=build /opt/venv /opt/venv

# Working directory owned by the user: settings read an optional ./.env, and without
# DATABASE_URL the embedded PostgreSQL keeps its data in ./.data (DATA_DIR).
WORKDIR /app
RUN chown gateway:gateway /app
# Numeric, so that orchestrators (runAsNonRoot) can tell it is not root.
USER 10001:10001

EXPOSE 8000

# Liveness only (the process answers); docker-compose.yml checks /readyz (database) instead.
# Python, not curl: the slim image has no curl. Proxies are bypassed for the loopback call.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8000/healthz', timeout=4)"]

# Exec form: the gateway is PID 1 and receives SIGTERM for a graceful shutdown.
# The flags win over HOST/PORT from the environment.
CMD ["gql-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
