"""Real OTLP receivers for the tests: an OTLP/gRPC server and an OTLP/HTTP server on 127.0.0.1.

Both decode the protobuf payloads with opentelemetry-proto (what Jaeger or a Collector would
receive) into ``Received`` spans, and keep the request headers they saw. Nothing is mocked:
the exporter under test talks to them over real sockets, on ephemeral ports.
"""

from __future__ import annotations

import gzip
import socket
import threading
import zlib
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

PROTOCOLS = ("grpc", "http/protobuf")  # what receiver_for() serves

KIND_NAMES = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}


def any_value(value: AnyValue) -> Any:
    """Decode an OTLP AnyValue into a Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def attributes(items: Any) -> dict[str, Any]:
    """OTLP KeyValue list -> dict."""
    return {kv.key: any_value(kv.value) for kv in items}


@dataclass
class Received:
    """One decoded span as the backend got it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status: str
    status_message: str
    events: list[tuple[str, int, dict[str, Any]]]
    links: list[tuple[str, str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: tuple[str, str]
    raw: bytes = field(repr=False, default=b"")

    @property
    def attrs(self) -> dict[str, Any]:
        """Shorthand for ``attributes``."""
        return self.attributes


def decode(request: trace_service_pb2.ExportTraceServiceRequest) -> list[Received]:
    """Flatten an ExportTraceServiceRequest into Received spans."""
    out: list[Received] = []
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = (ss.scope.name, ss.scope.version)
            for span in ss.spans:
                out.append(
                    Received(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=KIND_NAMES.get(span.kind, str(span.kind)),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=attributes(span.attributes),
                        status=STATUS_NAMES.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        events=[
                            (e.name, e.time_unix_nano, attributes(e.attributes))
                            for e in span.events
                        ],
                        links=[
                            (link.trace_id.hex(), link.span_id.hex(), attributes(link.attributes))
                            for link in span.links
                        ],
                        resource=resource,
                        scope=scope,
                        raw=span.SerializeToString(deterministic=True),
                    )
                )
    return out


class Receiver:
    """Collects what an OTLP server received (thread-safe)."""

    protocol = ""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[Received] = []
        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self.sizes: list[int] = []  # decoded request sizes, bytes
        self.port = 0

    def add(
        self, request: trace_service_pb2.ExportTraceServiceRequest, headers: dict[str, str]
    ) -> None:
        """Record one export request."""
        spans = decode(request)
        with self.lock:
            self.sizes.append(request.ByteSize())
            self.requests += 1
            self.spans.extend(spans)
            self.headers.append(headers)

    def clear(self) -> None:
        """Forget everything received so far."""
        with self.lock:
            self.spans.clear()
            self.headers.clear()
            self.sizes.clear()
            self.requests = 0

    def snapshot(self) -> list[Received]:
        """A copy of the spans received so far."""
        with self.lock:
            return list(self.spans)

    def by_trace(self) -> dict[str, list[Received]]:
        """Received spans grouped by OTel trace id."""
        out: dict[str, list[Received]] = {}
        for span in self.snapshot():
            out.setdefault(span.trace_id, []).append(span)
        return out

    @property
    def endpoint(self) -> str:
        """The URL to give the exporter."""
        raise NotImplementedError

    def start(self) -> Receiver:
        """Start serving; returns self."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving."""
        raise NotImplementedError

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.receiver.add(request, headers)
        return trace_service_pb2.ExportTraceServiceResponse()


class GrpcReceiver(Receiver):
    """An OTLP/gRPC TraceService on 127.0.0.1 (port 0: an ephemeral one)."""

    protocol = "grpc"

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self.port = port
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GrpcReceiver:
        """Start serving."""
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            options=[("grpc.max_receive_message_length", 4 * 1024 * 1024)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), server)
        port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        if not port:
            raise RuntimeError(f"cannot listen on 127.0.0.1:{self.port}")
        self.port = port
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving (pending calls are cancelled)."""
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None


class HttpReceiver(Receiver):
    """An OTLP/HTTP (protobuf) endpoint at http://127.0.0.1:PORT/v1/traces."""

    protocol = "http/protobuf"

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.paths: list[str] = []

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (the exporter adds ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpReceiver:
        """Start serving."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.paths.append(self.path)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(request, {k.lower(): v for k, v in self.headers.items()})
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Blackhole:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a hung backend)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)  # hold it open, read nothing, answer nothing

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._stop = True
        for conn in self.conns:
            conn.close()
        self.sock.close()


def receiver_for(protocol: str, port: int = 0) -> Receiver:
    """A receiver for ``grpc`` or ``http/protobuf``."""
    return GrpcReceiver(port) if protocol == "grpc" else HttpReceiver(port)


def iter_tree(spans: list[Received]) -> Iterator[tuple[Received, Received | None]]:
    """Each span with its parent (None for the root)."""
    by_id = {s.span_id: s for s in spans}
    for span in spans:
        yield span, by_id.get(span.parent_span_id) if span.parent_span_id else None


def check_traces(spans: list[Received]) -> dict[str, list[Received]]:
    """Assert what every backend needs: one root per trace, no duplicate span ids, every
    parent present, never status OK. Returns the spans by trace id."""
    by_trace: dict[str, list[Received]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    for trace_id, group in by_trace.items():
        roots = [s for s in group if not s.parent_span_id]
        assert len(roots) == 1, (trace_id, [s.name for s in roots])
        ids = [s.span_id for s in group]
        assert len(ids) == len(set(ids)), f"duplicate span ids in {trace_id}"
        known = set(ids)
        orphans = [s.name for s in group if s.parent_span_id and s.parent_span_id not in known]
        assert not orphans, (trace_id, orphans)
        assert all(s.status != "OK" for s in group), "status OK is never set"
        assert all(s.end_ns >= s.start_ns > 0 for s in group)
    return by_trace


def root_of(spans: list[Received]) -> Received:
    """The root span of one trace's spans."""
    (root,) = [s for s in spans if not s.parent_span_id]
    return root
