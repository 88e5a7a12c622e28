# syntax=docker/dockerfile:1
FROM python:3.12-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app

FROM base AS deps
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=requirements.txt,target=requirements.txt \
    python -m pip install -r requirements.txt

FROM deps AS test
COPY . .
RUN python -m pytest -q

FROM deps AS final
RUN --mount=type=secret,id=pip_token,required=false \
    test ! -f /run/secrets/pip_token || echo "private index configured"
COPY --chown=1000:1000 --exclude=tests . .
USER 1000
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN <<EOF
python - <<'PY'
import compileall; compileall.compile_dir('/app', quiet=1)
PY
EOF
CMD ["python", "-m", "app"]
