# syntax=docker/dockerfile:1.7
# guildbot container image.
#
#   docker build -t guildbot:0.1.0 .
#   docker run --rm -e DISCORD_TOKEN=... -e DATABASE_URL=... guildbot:0.1.0          # python -m app run
#   docker run --rm -e DATABASE_URL=... guildbot:0.1.0 migrate                        # python -m app migrate
#   docker run --rm -it guildbot:0.1.0 sandbox                                        # the sandbox console
#
# Two stages: the builder turns the project and all its dependencies into wheels; the runtime
# stage installs only those wheels (no compiler, no pip cache, no source tree) and runs as the
# unprivileged uid 10001. Nothing secret is baked in: DISCORD_TOKEN, DATABASE_URL and REDIS_URL
# come from the environment at run time. There is deliberately no HEALTHCHECK: Kubernetes probes
# /livez, /readyz on OPS_PORT (8080) instead (see k8s/base/statefulset.yaml).
# The root filesystem is mounted read-only in Kubernetes; only /tmp is writable (an emptyDir).
# Needs BuildKit (the default builder since Docker 23) for the RUN --mount flags.

FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# What `pip install .` needs: the build metadata (pyproject.toml names README.md as its readme)
# and the package. Everything else is kept out of the build context by .dockerignore.
COPY pyproject.toml README.md ./
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels .

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    OPS_PORT=8080
# The working directory belongs to the bot user so that `docker run -it IMAGE sandbox` can keep
# its SQLite file in ./data; in Kubernetes the root filesystem is read-only anyway.
RUN groupadd --system --gid 10001 guildbot \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin guildbot \
 && install -d -o 10001 -g 10001 -m 0755 /srv/guildbot
# Install the project and its dependencies from the builder's wheels only (--no-index: nothing is
# fetched at this point, and the wheels never become a layer of this image).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl
# The aerich migrations for `python -m app migrate`; MIGRATIONS_DIR tells the code where they
# are. Owned by root: the bot can read them, not change them.
COPY migrations /srv/guildbot/migrations
ENV MIGRATIONS_DIR=/srv/guildbot/migrations
WORKDIR /srv/guildbot
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "app"]
CMD ["run"]
