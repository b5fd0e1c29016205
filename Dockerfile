# One image for the generator, the processor and the API (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .
ENV LOGPULSE_ENV_FILE=/app/.env.local
COPY .env.local ./
RUN mkdir -p /data
EXPOSE 8000
CMD ["logpulse", "serve", "--host", "0.0.0.0"]
