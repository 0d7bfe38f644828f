# relay: a PII-scrubbing relay proxy for Sentry SDKs.
#
#   docker build -t relay .
#   docker run --rm -p 3000:3000 -e RELAY_UPSTREAM=https://sentry.io relay
#
# The default config is deploy/relay.docker.yml; mount your own at /etc/relay/relay.yml.

# ---- build: install the package and its dependencies into a virtualenv ----
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C compiler for the scrub engine's C tree walk (without one, the engine falls back to pure Python).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/relay

WORKDIR /src
# pyproject.toml names README.md as the package readme, so the build needs it.
COPY pyproject.toml setup.py README.md ./
COPY relay ./relay
COPY rules ./rules
RUN /opt/relay/bin/pip install --no-cache-dir .

# ---- runtime ----
FROM python:3.11-slim

ENV PATH=/opt/relay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RELAY_CONFIG=/etc/relay/relay.yml

RUN groupadd --system --gid 10001 relay \
 && useradd --system --uid 10001 --gid relay --home-dir /var/lib/relay --no-create-home \
        --shell /usr/sbin/nologin relay \
 && mkdir -p /etc/relay /var/lib/relay \
 && chown relay:relay /var/lib/relay

COPY --from=build /opt/relay /opt/relay
COPY deploy/relay.docker.yml /etc/relay/relay.yml

USER 10001:10001
WORKDIR /var/lib/relay
# The durable spool (spool.path, SQLite) lives here: mount a volume that outlives the container; the offline
# file sink may write here too.
VOLUME ["/var/lib/relay"]

EXPOSE 3000
STOPSIGNAL SIGTERM
# No curl in the slim image: probe readiness with the standard library (503 while starting or draining).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/readyz' % os.environ.get('RELAY_PORT', '3000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]

ENTRYPOINT ["relay"]
CMD ["run"]
