# syntax=docker/dockerfile:1.7
# guildbot container image.
#
#   docker build -t guildbot:0.1.0 .
#   docker run --rm -e DISCORD_TOKEN=... -e DATABASE_URL=... guildbot:0.1.0          # python -m app run
#   docker run --rm -e DATABASE_URL=... guildbot:0.1.0 migrate                        # python -m app migrate
#
# Two stages: the builder turns the project and its runtime dependencies, at the versions and
# hashes uv.lock pins (the same lock `make run` and `make test` install from), into wheels; the
# runtime stage installs only those wheels (no compiler, no pip cache, no source tree) and runs as
# the unprivileged uid 10001. Only app/ of the source tree reaches the image, with the aerich
# migrations inside it (app/db/migrations, package data: `python -m app migrate` finds them in
# the installed package): the sandbox (a top-level `sandbox/` package), `testsupport/`, tests,
# benchmarks and the dev tools never do (.dockerignore is an allow-list). Nothing secret is baked
# in: DISCORD_TOKEN, DATABASE_URL and REDIS_URL come from the environment at run time. There is
# deliberately no HEALTHCHECK: Kubernetes probes /livez, /readyz on OPS_PORT (8080) instead (see
# k8s/base/statefulset.yaml); OPS_HOST=0.0.0.0 lets the kubelet reach them on the pod's address
# (outside the image the ops endpoints listen on 127.0.0.1 only).
# The root filesystem is mounted read-only in Kubernetes; only /tmp is writable (an emptyDir).
# Needs BuildKit (the default builder since Docker 23) for the RUN --mount flags.

FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# uv only reads the lock here; the same release as scripts/lib.sh's UV_VERSION.
RUN pip install --no-cache-dir uv==0.13.9
# The runtime dependencies exactly as locked, each checked against the lock's hashes; the `dev`
# group (test and lint tools) stays out.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    uv export --quiet --frozen --no-dev --no-emit-project --format requirements-txt -o requirements.txt \
 && pip wheel --wheel-dir /wheels --no-deps --require-hashes -r requirements.txt
# Then the bot itself: pyproject.toml names README.md as its readme; only app/ is packaged,
# its migrations with it.
COPY app ./app
RUN pip wheel --wheel-dir /wheels --no-deps .

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    OPS_HOST=0.0.0.0 \
    OPS_PORT=8080
# The working directory belongs to the bot user so that the default SQLite database can keep its
# file in ./data; in Kubernetes the root filesystem is read-only anyway.
RUN groupadd --system --gid 10001 guildbot \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin guildbot \
 && install -d -o 10001 -g 10001 -m 0755 /srv/guildbot
# Install the project and its dependencies from the builder's wheels only (--no-index: nothing is
# fetched at this point, so the image holds exactly the locked set; the wheels never become a
# layer of this image).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl
WORKDIR /srv/guildbot
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "app"]
CMD ["run"]
