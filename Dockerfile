FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md pricing.yaml ./
COPY proxy ./proxy
COPY adapters ./adapters
RUN pip install . && useradd --create-home smr
USER smr
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
CMD ["smr", "serve", "--config", "/app/pricing.yaml", "--host", "0.0.0.0", "--port", "8000"]
