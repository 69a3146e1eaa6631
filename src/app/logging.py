"""One log format for every line: pycrio's structlog events and the libraries' stdlib records alike.

structlog renders through the standard library (`ProcessorFormatter`), so grpc's, httpx's and every other
library's `logging` records get the same fields (time, level, logger name, the RPC's request id and object
ids, the trace id when tracing is on) and the same renderer (console or JSON) as pycrio's own events.
`log.level` is the root logger's level: it applies to all, and SIGHUP changes it live (`set_level`).
"""

import logging
import sys
from typing import TextIO

import structlog

from adapters.tracing.spans import current_ids
from app.config import LogConfig

_HANDLER_NAME = "pycrio"


def _add_trace_ids(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """trace_id and span_id of the current span, when tracing is on and the call is sampled."""
    event.update(current_ids())
    return event


def _shared_processors() -> list[structlog.typing.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_trace_ids,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(config: LogConfig, stream: TextIO | None = None) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if config.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from the standard library: their own message and logger name, then the same fields.
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(config.level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def set_level(level: str) -> None:
    """The level of every logger, pycrio's and the libraries' (they all propagate to the root)."""
    logging.getLogger().setLevel(logging.getLevelNamesMapping()[level.upper()])


def current_level() -> str:
    return logging.getLevelName(logging.getLogger().level).lower()
