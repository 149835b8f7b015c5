# Shaobing images: `docker build --target edge .` and `docker build --target hub .`
# Neither image contains torch (training lives in the `train` extra only).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 SHAOBING_HOME=/opt/shaobing
WORKDIR /opt/shaobing
RUN groupadd --system shaobing && useradd --system --gid shaobing --home-dir /var/lib/shaobing --create-home shaobing \
    && mkdir -p /var/lib/shaobing/evidence && chown -R shaobing:shaobing /var/lib/shaobing
# (a fresh named volume mounted on /var/lib/shaobing[/evidence] takes this owner: non-root can write)
COPY pyproject.toml README.md ./
COPY shaobing ./shaobing
COPY pipelines ./pipelines
COPY edge ./edge
COPY hub ./hub
COPY shaobing_tools ./shaobing_tools
COPY configs ./configs
COPY models ./models

FROM base AS edge-build
RUN python -m venv /venv && /venv/bin/pip install ".[edge,voice]"

FROM base AS hub-build
RUN python -m venv /venv && /venv/bin/pip install ".[hub,s3]"

FROM base AS edge
# OpenCV's FFmpeg backend reads RTSP/HTTP streams; libgl is not needed (headless build)
COPY --from=edge-build /venv /venv
ENV PATH=/venv/bin:$PATH SHAOBING_MODELS=/models
VOLUME ["/var/lib/shaobing", "/models"]
USER shaobing
EXPOSE 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=3)" || exit 1
ENTRYPOINT ["shaobing"]
CMD ["edge", "run", "-c", "/etc/shaobing/edge.yaml"]

FROM base AS hub
COPY --from=hub-build /venv /venv
ENV PATH=/venv/bin:$PATH
VOLUME ["/var/lib/shaobing"]
USER shaobing
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)" || exit 1
ENTRYPOINT ["shaobing"]
CMD ["hub", "serve", "-c", "/etc/shaobing/hub.yaml", "--http", "0.0.0.0:8080"]
