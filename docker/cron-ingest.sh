#!/bin/sh
# One nightly re-sync: `kb ingest --all`, its report appended to $KB_DATA_DIR/logs/ingest-YYYY-MM-DD.log.
# Logs older than KB_INGEST_LOG_DAYS (default 30) are removed. Exit code: that of kb ingest (1 = a file failed).
[ -f "${KB_CRON_ENV_FILE:-/etc/kb-cron.env}" ] && . "${KB_CRON_ENV_FILE:-/etc/kb-cron.env}"
logs="${KB_DATA_DIR:-./data}/logs"
mkdir -p "$logs"
log="$logs/ingest-$(date +%Y-%m-%d).log"
{
    echo "=== $(date '+%Y-%m-%d %H:%M:%S') kb ingest --all"
    "${PYTHON:-python}" -m kb_assistant.cli ingest --all
    code=$?
    echo "=== $(date '+%Y-%m-%d %H:%M:%S') exit code $code"
} >> "$log" 2>&1
find "$logs" -name 'ingest-*.log' -mtime +"${KB_INGEST_LOG_DAYS:-30}" -delete 2>/dev/null
exit "${code:-1}"
