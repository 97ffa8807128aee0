# mlpipe: scheduler (default), model server (`serve`) and MLflow UI (`ui`) in one image.
# Build and run: see docs/docker.md.
#
#   docker build -t mlpipe .
#   docker build --build-arg TORCH_INDEX_URL= -t mlpipe .   # torch from PyPI (CUDA on x86_64)
#
# TORCH_INDEX_URL is handed to pip as --extra-index-url; the default, PyTorch's CPU-only
# index, gives torch==X+cpu wheels (~200 MB instead of several GB of CUDA libraries). pip
# still resolves every other dependency from PyPI.

FROM python:3.11.14-slim-bookworm AS build

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Only what the package build needs; pipelines and configs come in the runtime stage.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mlpipe/ ./mlpipe/
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} ".[ml]"


FROM python:3.11.14-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    MLPIPE_HOME=/data \
    MLPIPE_DAGS_FOLDER=/opt/mlpipe/pipelines

# A fixed UID/GID, so a bind-mounted /data can be chowned to it on the host.
RUN groupadd --gid 10001 mlpipe \
    && useradd --uid 10001 --gid mlpipe --create-home --shell /usr/sbin/nologin mlpipe \
    && mkdir -p /data \
    && chown mlpipe:mlpipe /data

COPY --from=build /opt/venv /opt/venv

# The shipped pipelines read ../configs relative to their own file.
WORKDIR /opt/mlpipe
COPY pipelines/ ./pipelines/
COPY configs/ ./configs/

USER mlpipe
# Metadata DB (SQLite by default), MLflow store, artifacts and task logs.
VOLUME ["/data"]

# 8000: `mlpipe serve ... --host 0.0.0.0` with MLPIPE_SERVE_TOKEN set (a bearer token for
# /predict and /reload; it warns without one); 5000: `mlpipe ui --host 0.0.0.0`, which has
# no auth: publish it on the host's loopback only (-p 127.0.0.1:5000:5000). docs/docker.md
EXPOSE 8000 5000

# For the default command: the scheduler's metadata database answers and its schema is
# current (a read-only query). For `serve`, override it with a GET of /health (docs/docker.md).
HEALTHCHECK --interval=30s --timeout=20s --start-period=30s --retries=3 \
    CMD ["mlpipe", "pools", "list", "--output", "json"]

ENTRYPOINT ["mlpipe"]
CMD ["scheduler"]
