# The exchange worker image: `docker build -t exchange .`
# The entry point is the Procfile's worker command; the other processes of the Procfile run
# from the same image with another command (`exchange archive`, `exchange produce`, ...).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exchange_app exchange_app
COPY tables tables
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 exchange \
    && mkdir -p /data /archive \
    && chown exchange:exchange /data /archive
COPY --from=build /install /usr/local
USER 10001:10001
WORKDIR /home/exchange
# RocksDB tables and the worker's state live on the volume; the broker is a real Kafka.
ENV EXCHANGE_DATA_DIR=/data \
    EXCHANGE_WEB_HOST=0.0.0.0 \
    EXCHANGE_EMBEDDED_BROKER=false \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=2)"]
ENTRYPOINT ["exchange", "worker", "-l", "info"]
