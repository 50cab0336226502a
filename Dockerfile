# One image for the scheduler, the operator and the monitor (entry: `energysched`).
# Not built here (no container engine on the development machines); on a k3s
# cluster: nerdctl build -t registry.local/energysched:0.1.0 .
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY energysched energysched
COPY monitor monitor
COPY bench bench
COPY mlworkflow mlworkflow
COPY kb kb
RUN pip install --no-cache-dir . && useradd --uid 10001 energysched
USER 10001
ENTRYPOINT ["energysched"]
