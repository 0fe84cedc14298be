FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Editable install: app/migrate.py finds alembic.ini and migrations/ next to the app package, in /app.
COPY pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN pip install -e .

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home signvault \
    && mkdir -p /data \
    && chown signvault:signvault /data \
    && chmod 700 /data

# The SQLite file and, without SIGNVAULT_MASTER_KEY*, the generated key and admin token land in /data.
ENV SIGNVAULT_DATA_DIR=/data \
    SIGNVAULT_HOST=0.0.0.0 \
    SIGNVAULT_PORT=8000
VOLUME ["/data"]

# Numeric, so Kubernetes runAsNonRoot can verify it without resolving a name.
USER 10001:10001
EXPOSE 8000

# No curl in the slim image; urlopen raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SIGNVAULT_PORT', '8000') + '/healthz', timeout=4)"]

ENTRYPOINT ["signvault"]
CMD ["serve"]
