"""A local OTLP/HTTP receiver for tests: a real HTTP server on 127.0.0.1 that decodes what it receives with the
OpenTelemetry protobuf definitions (``opentelemetry-proto``) and records it, so a test asserts on exactly what a
SIEM or collector would have been sent.

It is a test double only for the far end (a SaaS SIEM cannot run here); everything Aquifer sends crosses real HTTP.
``mode`` makes it misbehave on purpose: ``"ok"`` (200), ``"error"`` (answer 500, record nothing), ``"hang"`` (hold
the request without answering until the mode changes or the receiver stops).

>>> with OtlpReceiver() as rx:
...     rx.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

Mode = Literal["ok", "error", "hang"]


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as the Python value it encodes (kvlists as dicts, arrays as lists)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    return getattr(value, kind)


@dataclass
class LogRecord:
    """One received log record, decoded: its body and attributes as Python values, and its resource's."""

    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]
    event_name: str
    time_unix_nano: int
    severity_text: str


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    start_unix_nano: int
    end_unix_nano: int


class OtlpReceiver:
    """Records OTLP/HTTP protobuf ``/v1/logs`` and ``/v1/traces`` exports (gzip or deflate bodies accepted)."""

    def __init__(self, *, mode: Mode = "ok", port: int = 0) -> None:
        """``port``: 0 for a free one; a given one to stand in for a receiver that was closed (a collector
        restarted)."""
        self.mode: Mode = mode
        self.logs: list[LogRecord] = []
        self.spans: list[Span] = []
        self.requests: list[dict[str, Any]] = []  # path, headers (lower-case names), status, bytes
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                while receiver.mode == "hang" and not receiver._stopping.is_set():
                    time.sleep(0.05)
                if receiver.mode == "error":
                    receiver._note(self.path, headers, 500, len(raw))
                    self.send_response(500)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                encoding = headers.get("content-encoding", "")
                body = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw) if encoding else raw
                if self.path.rstrip("/").endswith("/v1/logs"):
                    receiver._logs(ExportLogsServiceRequest.FromString(body))
                    answer = ExportLogsServiceResponse().SerializeToString()
                elif self.path.rstrip("/").endswith("/v1/traces"):
                    receiver._spans(ExportTraceServiceRequest.FromString(body))
                    answer = ExportTraceServiceResponse().SerializeToString()
                else:
                    receiver._note(self.path, headers, 404, len(raw))
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                receiver._note(self.path, headers, 200, len(raw))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _note(self, path: str, headers: dict[str, str], status: int, size: int) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "status": status, "bytes": size})

    def _logs(self, request: ExportLogsServiceRequest) -> None:
        records = []
        for resource_logs in request.resource_logs:
            resource = {kv.key: any_value(kv.value) for kv in resource_logs.resource.attributes}
            for scope_logs in resource_logs.scope_logs:
                for rec in scope_logs.log_records:
                    records.append(
                        LogRecord(
                            body=any_value(rec.body),
                            attributes={kv.key: any_value(kv.value) for kv in rec.attributes},
                            resource=resource,
                            event_name=rec.event_name,
                            time_unix_nano=rec.time_unix_nano,
                            severity_text=rec.severity_text,
                        )
                    )
        with self._lock:
            self.logs.extend(records)

    def _spans(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                            resource=resource,
                            start_unix_nano=span.start_time_unix_nano,
                            end_unix_nano=span.end_time_unix_nano,
                        )
                    )
        with self._lock:
            self.spans.extend(spans)

    def wait_for(self, predicate: Any, *, timeout_s: float = 30.0) -> None:
        """Until ``predicate(self)`` is true; fails with what arrived so far."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return
            time.sleep(0.05)
        msg = f"receiver: condition not met in {timeout_s} s ({len(self.logs)} logs, {len(self.spans)} spans)"
        raise AssertionError(msg)

    def close(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_dict(message: Any) -> dict[str, Any]:
    """A protobuf message as its JSON form (for error messages)."""
    return MessageToDict(message)
