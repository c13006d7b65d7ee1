# The escalate image: the worker (`escalate worker`), the HTTP API (`escalate api`) and the
# one-off set-up (`escalate setup`) all run from it. Policies are mounted at /policies.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ESCALATE_POLICY_DIR=/policies \
    ESCALATE_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md worker.py ./
COPY workflows ./workflows
COPY activities ./activities
COPY starter ./starter
COPY escalate ./escalate
COPY examples/policies /policies
RUN pip install . && useradd --system --uid 10001 escalate

USER escalate
EXPOSE 8000 9464
# SIGTERM lets the worker finish the activities in flight (graceful_shutdown_timeout) and stop.
STOPSIGNAL SIGTERM
CMD ["escalate", "worker"]
