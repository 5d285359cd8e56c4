# StreamWise server image: the same `make setup` as on a developer machine.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake make git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN make setup
ENV STREAMWISE_HOST=0.0.0.0 STREAMWISE_PORT=8000
EXPOSE 8000
CMD [".venv/bin/streamwise", "serve"]
