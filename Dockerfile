# One image for the generator, the processor and the API (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .
# No .env.local in the image (it may hold API_KEY): compose passes it as the environment (env_file).
RUN mkdir -p /data
EXPOSE 8000
# Listening beyond loopback: `serve` refuses to start unless API_KEY is set (see docs/security.md).
CMD ["logpulse", "serve", "--host", "0.0.0.0"]
