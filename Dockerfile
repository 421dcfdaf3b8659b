# syntax=docker/dockerfile:1
# The churn app as a container: pinned environment, models built by the pipeline at build time,
# Gradio on port 7860. Build: `docker build -t churn .`   Run: `docker run -p 127.0.0.1:7860:7860 churn`
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1

# Hugging Face Spaces run containers as uid 1000; so do we, everywhere.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin app \
 && install -d -o app -g app /home/app/churn
WORKDIR /home/app/churn

# The exact pins first, so code changes do not reinstall the environment.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The code, owned by the app user; `churn` is imported from here (`python -m churn.cli` for the CLI).
COPY --chown=app:app . .
ENV PYTHONPATH=/home/app/churn
USER app

# Bake the models in: pulled from the DVC remote when .dvc/config names one (credentials: the build
# secret `dvc_config`, mounted as .dvc/config.local for this step only, never kept in a layer:
# `docker build --secret id=dvc_config,src=.dvc/config.local .`), else rebuilt by the pipeline
# (seeded, so exactly what dvc.lock records and CI validated); the build fails if the resulting
# dvc.lock differs from the committed one.
RUN --mount=type=secret,id=dvc_config,target=/home/app/churn/.dvc/config.local,uid=1000 \
    cp dvc.lock /tmp/dvc.lock.committed \
 && python -m dvc config core.no_scm true \
 && python scripts/pull_or_repro.py --strict --no-commit \
 && rm -rf .dvc/cache \
 && if ! cmp -s dvc.lock /tmp/dvc.lock.committed; then \
      diff /tmp/dvc.lock.committed dvc.lock; \
      echo "the pipeline did not reproduce the committed dvc.lock" >&2; exit 1; \
    fi

# Listen on every interface inside the container only; publish the port to the host explicitly.
ENV GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860
EXPOSE 7860

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"]

CMD ["python", "app.py"]
