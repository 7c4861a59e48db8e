# keras-lstm serve on the TensorFlow-free install (`pip install keras-lstm`, no extras):
# the ONNX and TFLite runtimes behind the HTTP server, about 280 MB of Python packages
# instead of 3.2 GB. docs/deploy.md: how to build, run and deploy it.
#
#   docker build -t keras-lstm-serve .                                   # mount the model
#   docker build --build-arg EXPORT=runs/demo/sentiment/export -t keras-lstm-serve .  # or copy it in
#   docker run -p 8080:8080 -v "$PWD/runs/demo/sentiment/export:/models/model:ro" keras-lstm-serve

# Stage 1: a wheel of this checkout (the same one tests/app/test_install.py installs).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY keras_lstm keras_lstm
COPY export export
COPY lstm_text lstm_text
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the server, its declared dependencies only (no build tools, no TensorFlow).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /wheels /wheels
# No extras by default; --build-arg EXTRAS=[grpc] adds `serve --grpc-port` (grpcio, tritonclient).
ARG EXTRAS=""
RUN pip install "$(echo /wheels/*.whl)${EXTRAS}" && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
# The export folder to bake in (relative to the build context); the default is a
# placeholder that says to mount one at /models/model instead.
ARG EXPORT=deploy/model
COPY ${EXPORT} /models/model
# A numeric user, so that Kubernetes' runAsNonRoot can check it is not root.
USER 10001:10001
EXPOSE 8080
# Ready only once the model is loaded and warmed, and no longer from SIGTERM on
# (slim has no curl: Python's urllib; a 503 raises, so the check fails).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v2/health/ready', timeout=2)"]
# SIGTERM (docker stop, Kubernetes) drains the requests in flight, then exits 0.
ENTRYPOINT ["keras-lstm"]
CMD ["serve", "/models/model", "--host", "0.0.0.0", "--port", "8080"]
