# syntax=docker/dockerfile:1
#
# One image for every klik process; the command picks which one runs:
#
#   docker run --rm klik python -m services.wallet     # auth | wallet | generation | content
#   docker run --rm klik python -m gateway
#   docker run --rm klik python -m sandbox              # stand-ins for outside systems
#   docker run --rm klik python -m kit health HOST:PORT [SERVICE]
#
# compose.yaml and deploy/k8s run it exactly that way. Inside a container a process
# must listen on 0.0.0.0 (KLIK_<SERVICE>_HOST / KLIK_GATEWAY_HOST): the defaults
# (127.0.0.1) are for the embedded stack of `make run` (`python -m stack`, not in the image).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv at /opt/klik with the runtime dependencies and klik ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/klik
ENV PATH=/opt/klik/bin:$PATH
WORKDIR /src

# Dependencies get their own layer, rebuilt only when pyproject.toml or the lock changes.
# requirements.lock pins the runtime *and* the dev tools (pytest, hypothesis, ruff, mypy,
# type stubs, PyYAML), which have no business in a production image. So instead of
# installing it whole, install [project].dependencies with the lock as a *constraints*
# file: every package pip picks gets its locked version, and the dev tools are never
# pulled in. The freeze check then fails the build if any installed package is not
# pinned, at that exact version, in the lock (a stale lock: run `make lock`).
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.runtime \
 && pip install -r requirements.runtime -c requirements.lock \
 && pip check \
 && pip freeze > installed.txt \
 && if grep -v -i -x -F -f requirements.lock installed.txt; then \
        echo "^ installed but not pinned in requirements.lock: run make lock" >&2; exit 1; \
    fi

# The klik packages. The gRPC stubs under klik/ are committed, so no protoc runs here;
# README.md is the package's declared readme, setuptools needs it to build.
COPY README.md ./
COPY klik ./klik
COPY kit ./kit
COPY services ./services
COPY gateway ./gateway
COPY sandbox ./sandbox
RUN pip install --no-deps . \
 && cd / \
 && python -c "import gateway.app, sandbox.app, services.auth.service, services.wallet.service, services.generation.service, services.content.service"

# ---- runtime: the virtualenv on a clean base, run by an unprivileged user ----
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="klik" \
      org.opencontainers.image.description="klik gRPC services and HTTP gateway (one image, pick the process with the command)"
# KLIK_VAR_DIR only matters when no KLIK_<SERVICE>_DATABASE_URL is given (SQLite files);
# it is a directory the klik user owns, and so is keys/ in it: the service identity
# keys (KLIK_SERVICE_KEYS_DIR) a volume or Secret is mounted on. The .pyc files were compiled at install time,
# so nothing needs to write next to the code (read-only root filesystems work).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/klik/bin:$PATH \
    KLIK_VAR_DIR=/var/lib/klik
RUN groupadd --system --gid 10001 klik \
 && useradd --system --uid 10001 --gid klik --home-dir /var/lib/klik --no-create-home \
        --shell /usr/sbin/nologin klik \
 && install -d -o klik -g klik -m 0750 /var/lib/klik /var/lib/klik/keys /var/lib/klik/assets
COPY --from=build /opt/klik /opt/klik
WORKDIR /var/lib/klik
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# gateway HTTP; auth, wallet, generation, content gRPC; their Prometheus metrics.
EXPOSE 8080 50051 50052 50053 50054 9101 9102 9103 9104
# No process by default: say how to pick one (exit status 2, like any usage error).
CMD ["python", "-c", "import sys; print('usage: docker run IMAGE python -m services.<auth|wallet|generation|content>\\n       docker run IMAGE python -m gateway\\n       docker run IMAGE python -m sandbox\\n       docker run IMAGE python -m kit health HOST:PORT [SERVICE]', file=sys.stderr); sys.exit(2)"]
