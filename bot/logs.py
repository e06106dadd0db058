"""structlog set-up: JSON lines in production, the console renderer in a terminal.

Every event passes through the process redactor, so a secret that reaches a log call
(a URL with its password, a token) is masked before it is written.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from commands.redact import redact


def _import_structlog_without_rich() -> Any:
    """structlog imports rich, when it is installed (a development dependency pulls it in),
    for pretty tracebacks that dbops never prints: ``format_exc_info`` below turns every
    traceback into text first. That import was about a tenth of a ``dbops migrate status``
    (bench/cli_startup.py), so structlog is loaded as if rich were absent, and rich stays
    importable for anything else."""
    if "structlog" not in sys.modules and "rich" not in sys.modules:
        sys.modules["rich"] = None  # import rich -> ImportError, as when it is not installed
        try:
            import structlog
        finally:
            del sys.modules["rich"]
    import structlog
    return structlog


structlog = _import_structlog_without_rich()


def _redact_event(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return {key: redact(value) if isinstance(value, str) else value for key, value in event.items()}


def configure_logging(*, level: str | None = None, stream: Any = None) -> None:
    """Configure once per process; ``stream`` defaults to whatever sys.stderr is at write time."""
    factory = (lambda *_: structlog.PrintLogger(sys.stderr)) if stream is None else structlog.PrintLoggerFactory(stream)
    stream = stream or sys.stderr
    level_name = (level or os.environ.get("DBOPS_LOG_LEVEL") or "WARNING").upper()
    renderer: Any
    if stream.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level_name, logging.WARNING)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
