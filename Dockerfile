# One image for the API, the agents and the console (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml constraints.txt README.md ./
COPY domain domain
COPY schemas schemas
COPY db db
COPY ingest_api ingest_api
COPY stream_agents stream_agents
COPY ops_console ops_console
RUN pip install --no-cache-dir -c constraints.txt .
USER nobody
