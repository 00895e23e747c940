# Greenlight server image: slim Python, non-root, `greenlight serve`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GREENLIGHT_DATA_DIR=/var/lib/greenlight \
    GREENLIGHT_DATABASE_URL=sqlite+aiosqlite:////var/lib/greenlight/greenlight.db

RUN groupadd --system greenlight \
    && useradd --system --gid greenlight --home-dir /var/lib/greenlight --create-home greenlight

WORKDIR /opt/greenlight
COPY pyproject.toml README.md ./
COPY app ./app
COPY cds_hooks ./cds_hooks
COPY igs ./igs
COPY questionnaires ./questionnaires
RUN pip install --no-cache-dir .

USER greenlight
EXPOSE 8080
# Production needs at least GREENLIGHT_TOKEN_SECRET, GREENLIGHT_CLIENTS and GREENLIGHT_BASE_URL;
# GREENLIGHT_DATABASE_URL=postgresql+asyncpg://... for PostgreSQL.
CMD ["greenlight", "serve", "--host", "0.0.0.0", "--port", "8080"]
