"""One OTLP/HTTP export at a time, and whether it was acknowledged (:class:`Sender`, for
:mod:`aquifer.export.decisions`)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

STOP_GRACE_S = 3.0
"""On SIGTERM/SIGINT, how long the batch in flight may take to be acknowledged before it is abandoned."""
_SDK_LOGGER = "opentelemetry.exporter.otlp.proto.http._log_exporter"


@dataclass(frozen=True)
class ExportConfig:
    """Where records go (the full ``/v1/logs`` URL) and one export's time limit, its retries included."""

    endpoint: str
    timeout_s: float


@dataclass(frozen=True)
class Outcome:
    """What became of one export: ``acked`` only on the exporter's SUCCESS with a 2xx answer."""

    acked: bool
    reason: str = ""
    abandoned: bool = False
    rejected: int = 0


class _LastMessage(logging.Handler):
    """Keeps the SDK exporter's first log line of an export (why it failed: the later ones say it gave up) instead
    of printing one per retry."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.message = self.message or record.getMessage()[:300]


def _sdk_messages() -> _LastMessage:
    """The handler that takes the SDK exporter's log lines (installed once per process)."""
    sdk = logging.getLogger(_SDK_LOGGER)
    for handler in sdk.handlers:
        if isinstance(handler, _LastMessage):
            return handler
    handler = _LastMessage()
    sdk.addHandler(handler)
    sdk.propagate = False
    return handler


def _partial_success(content: bytes) -> tuple[int, str]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    try:
        answer = ExportLogsServiceResponse.FromString(content)
    except Exception:  # not protobuf (a JSON or empty body): no partial success to report
        return 0, ""
    return int(answer.partial_success.rejected_log_records), answer.partial_success.error_message


class Sender:
    """One export at a time through the SDK's ``OTLPLogExporter`` (endpoint, headers, timeout, compression and
    certificates from the ``OTEL_EXPORTER_OTLP_*`` environment), in a daemon thread so a stop request need not wait
    for a hung collector longer than :data:`STOP_GRACE_S`."""

    def __init__(self, config: ExportConfig) -> None:
        import requests
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        self.config = config
        self._answers: list[tuple[int, bytes]] = []
        session = requests.Session()
        session.hooks["response"].append(self._answered)
        self.exporter = OTLPLogExporter(endpoint=config.endpoint, timeout=config.timeout_s, session=session)
        self._sdk_says = _sdk_messages()

    def _answered(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._answers.append((int(response.status_code), bytes(response.content)))

    def send(self, batch: list[Any], stop: threading.Event | None = None) -> Outcome:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        self._answers, self._sdk_says.message = [], ""
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["result"] = self.exporter.export(batch)
            except Exception as exc:  # the exporter catches its own; anything else is a failed attempt too
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="aquifer-ship-export", daemon=True).start()
        stopping_since: float | None = None
        while not done.wait(0.05):
            if stop is not None and stop.is_set():
                stopping_since = stopping_since or time.monotonic()
                if time.monotonic() - stopping_since > STOP_GRACE_S:
                    return Outcome(False, "stopping: the batch in flight is abandoned", abandoned=True)
        if "error" in box:
            return Outcome(False, f"exporter error: {box['error']}")
        answers = list(self._answers)
        status = answers[-1][0] if answers else None
        if box["result"] is not LogRecordExportResult.SUCCESS:
            return Outcome(False, self._sdk_says.message or (f"HTTP {status}" if status else "no answer"))
        if status is None or not 200 <= status < 300:
            why = f"HTTP {status} is not an acknowledgement (redirects are not followed: name the final URL)"
            return Outcome(False, why)
        rejected, message = _partial_success(answers[-1][1])
        return Outcome(True, message, rejected=rejected)

    def close(self) -> None:
        self.exporter.shutdown()  # type: ignore[no-untyped-call]
