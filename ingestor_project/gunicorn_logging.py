"""gunicorn's own log lines through the project's logging: one format per process (JSON or
console, as LOG_FORMAT says) and the same redaction, query strings included.

Used as ``gunicorn --logger-class ingestor_project.gunicorn_logging.GunicornLogger``. gunicorn's
default logger writes its error and access lines with handlers of its own, past structlog: an
access line carried ``/metrics?token=...`` in clear.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import structlog
from gunicorn.glogging import Logger

from ingestor_project.logging import redact_text

access_log = structlog.get_logger("gunicorn.access")


class GunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # The master runs before the application is loaded: the project's logging comes from
        # the settings here, as Django's own setup would configure it in each worker.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ingestor_project.settings")
        from django.conf import settings
        from django.utils.log import configure_logging

        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
        self.access_log.setLevel(logging.INFO)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path = f"{path}?{environ['QUERY_STRING']}"
        access_log.info(
            "http_request",
            method=environ.get("REQUEST_METHOD"),
            path=redact_text(path),
            status=getattr(resp, "status_code", None),
            bytes=getattr(resp, "sent", None),
            ms=round(request_time.total_seconds() * 1000, 1),
            remote_addr=environ.get("REMOTE_ADDR"),
            user_agent=environ.get("HTTP_USER_AGENT"),
        )
