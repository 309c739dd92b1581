#!/bin/sh
# Container entry point of the cron service: install the crontab, hand the KB_* settings to the job, run cron.
# Schedule: KB_INGEST_CRON (default "0 2 * * *", 02:00 container time). Logs: $KB_DATA_DIR/logs/.
set -eu
schedule="${KB_INGEST_CRON:-0 2 * * *}"
# cron starts jobs with an empty environment: keep ours (KB_*, HF_*, PATH …) in a file the job sources
export -p | grep -E "^export (KB_|HF_|TRANSFORMERS_|PATH=|PYTHON|DO_NOT_TRACK)" > /etc/kb-cron.env
sed "s|^0 2 \* \* \*|$schedule|" /app/docker/crontab > /etc/cron.d/kb-ingest
chmod 0644 /etc/cron.d/kb-ingest
mkdir -p "${KB_DATA_DIR:-/data}/logs"
echo "kb-assistant cron: '$schedule' runs kb ingest --all; logs in ${KB_DATA_DIR:-/data}/logs/"
exec cron -f
