"""The daemon's logs on stderr: text, or one JSON object per line (`LEADRULES_LOG_FORMAT`)."""

from __future__ import annotations

import logging
import os
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging() -> None:
    """Logs on stderr: `LEADRULES_LOG_LEVEL` (INFO), `LEADRULES_LOG_FORMAT` (`text` or `json`)."""
    level = os.environ.get("LEADRULES_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    if os.environ.get("LEADRULES_LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A sweep or drain still running when its next second comes is skipped by design
    # (max_instances=1, coalesce): not worth a warning a second under a backlog.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
