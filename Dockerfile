# Container image of the simulatord daemon: pre-built wheels in a venv, `simulatord serve` as a non-root user.
#
# Build the wheels on the host first (the build then needs no network at all, which matters where
# containers cannot reach a package index):
#     python -m pip wheel '.[fast,redis]' -w dist/wheels  # [fast]: uvicorn and uvloop, which the daemon then
#                                                       # serves with; [redis]: --store redis:// and replicas
#     podman build -t localhost/simulatord:dev .        # or: docker build ...
# Configuration is by environment variables (SIMULATORD_*, see below) or `serve` flags appended to the
# run command; nothing is baked in.

# ---- builder: resolve and install everything into a self-contained venv -------------------------
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY dist/wheels/ /wheels/
# --no-index: only the wheels from the context, so the image is exactly what the host resolved. The fast
# extra is what makes `--server auto` (the default) serve with uvicorn on uvloop instead of hypercorn; the
# redis extra lets the image run as a replica (examples/replicas).
# pip itself is removed afterwards: the runtime image has no installer (and no compiler: every dependency
# ships a binary wheel).
RUN python3 -m venv /opt/simulatord \
 && /opt/simulatord/bin/pip install --no-index --find-links /wheels 'simulatord[fast,redis]' \
 && /opt/simulatord/bin/pip uninstall -y -q pip \
 && /opt/simulatord/bin/python -c "import simulatord.cli"

# ---- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim
# A fixed numeric uid/gid so volume permissions are predictable across hosts.
RUN groupadd --system --gid 10001 simulatord \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin simulatord
COPY --from=builder /opt/simulatord /opt/simulatord
ENV PATH=/opt/simulatord/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIMULATORD_HOST=0.0.0.0 \
    SIMULATORD_HTTP_PORT=8080 \
    SIMULATORD_GRPC_PORT=50051
# SIMULATORD_PUBLIC_URL (the base of session URLs, e.g. http://simulatord:8080 inside a compose network)
# and SIMULATORD_TEMPLATES (a directory mounted read-only) are deployment-specific: set them at run time.
USER 10001:10001
EXPOSE 8080 50051
# gRPC health (grpc.health.v1). Shell form so that an overridden SIMULATORD_GRPC_PORT is honoured.
# Note: podman runs healthchecks only through systemd timers; tests must still wait for readiness.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD simulatord health --address "127.0.0.1:${SIMULATORD_GRPC_PORT:-50051}" || exit 1
# Exec form: simulatord is the process that receives SIGTERM (run with --init / `init: true` so that
# PID 1 forwards signals and reaps) and it exits 0 after a graceful stop.
STOPSIGNAL SIGTERM
ENTRYPOINT ["simulatord"]
CMD ["serve"]
