"""The OPA backend's side of the wire, against a recording stand-in for an OPA server.

No `opa` binary can be installed on the build machines (tests/test_opa.py runs the real one where it exists), so
this stand-in speaks the part of OPA's REST API the backend uses - list and put policies, put data, query a
rule - records every request, and evaluates with rego-cpp. It shows what Aquifer sends and that the answers it
reads back become the same decisions as the embedded engine's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import regopy

from aquifer.policy import (
    POLICY_ENGINE_UNAVAILABLE,
    EmbeddedBackend,
    OpaBackend,
    PolicyEngine,
    PolicySource,
    RequestContext,
    Resource,
)
from aquifer.settings import PROJECT_ROOT
from tests.demo_users import user as demo_user

POLICIES, CATALOG = PROJECT_ROOT / "policies", PROJECT_ROOT / "catalog"


class RecordingOpa(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # the ids `opa run --server policies/` gives the files it loads
        self.policies: dict[str, str] = {f"policies/{rel}": "" for rel in PolicySource.read(POLICIES, CATALOG).modules}
        self.data: dict[str, Any] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_queries = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def evaluate(self, path: str, input_doc: Any) -> Any:
        interp = regopy.Interpreter()
        for name, text in self.policies.items():
            interp.add_module(name, text)
        interp.add_data(self.data)
        interp.set_input(regopy.Input(input_doc))
        out = interp.query("x := data." + path.replace("/", "."))
        return out.results[0].bindings["x"] if out.ok() and out.results else None


class _Handler(BaseHTTPRequestHandler):
    server: RecordingOpa

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, code: int, body: Any = None) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, None))
        if self.path.rstrip("/") == "/v1/policies":
            return self._reply(200, {"result": [{"id": i, "raw": t} for i, t in self.server.policies.items()]})
        return self._reply(404, {"code": "resource_not_found"})

    def do_PUT(self) -> None:
        body = self._body()
        if self.path.startswith("/v1/policies/"):
            self.server.requests.append(("PUT", self.path, body.decode()))
            self.server.policies[self.path.removeprefix("/v1/policies/")] = body.decode()
            return self._reply(200, {})
        if self.path.startswith("/v1/data/"):
            doc = json.loads(body)
            self.server.requests.append(("PUT", self.path, doc))
            node = self.server.data
            *parents, leaf = self.path.removeprefix("/v1/data/").split("/")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = doc
            return self._reply(204)
        return self._reply(404, {"code": "resource_not_found"})

    def do_POST(self) -> None:
        doc = json.loads(self._body())
        self.server.requests.append(("POST", self.path, doc))
        if self.server.fail_queries:
            return self._reply(500, {"code": "internal_error", "message": "boom"})
        result = self.server.evaluate(self.path.removeprefix("/v1/data/"), doc["input"])
        return self._reply(200, {"result": result} if result is not None else {})


@pytest.fixture
def opa() -> Iterator[RecordingOpa]:
    server = RecordingOpa()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_backend_pushes_modules_and_catalog_then_queries_decisions(opa: RecordingOpa) -> None:
    engine = PolicyEngine(OpaBackend(opa.url), POLICIES, CATALOG)
    assert engine.error is None, engine.error
    source = PolicySource.read(POLICIES, CATALOG)
    puts = {path: body for method, path, body in opa.requests if method == "PUT"}
    for rel, text in source.modules.items():
        assert puts[f"/v1/policies/policies/{rel}"] == text, "replaces the module OPA loaded from that file"
    assert not any(p.startswith("/v1/policies/aquifer/") for p in puts), "no duplicate module ids"
    assert puts["/v1/data/aquifer/catalog"] == source.catalog.policy_data()
    assert engine.revision == PolicyEngine(EmbeddedBackend(), POLICIES, CATALOG).revision

    embedded = PolicyEngine(EmbeddedBackend(), POLICIES, CATALOG)
    resources = [
        Resource(ds, level, layer=layer, pii_types=pii)
        for ds in ("product_docs", "hr_case_notes", "finance_reports", "shadow")
        for level in ("public", "confidential", "restricted")
        for layer in ("platinum", "gold")
        for pii in ((), ("email", "person"))
    ]
    for ctx in (
        RequestContext("support_assistant", "customer_support", "local_smollm2"),
        RequestContext("hr_case_assistant", "hr_casework", "local_smollm2", user=demo_user("amira.haddad")),
        RequestContext("finance_analyst", "financial_analysis", "local_smollm2", user=demo_user("erin.walsh")),
        RequestContext("hr_case_assistant", "hr_casework", "local_smollm2"),
        RequestContext("marketing_assistant", "marketing", "external_gpt"),
    ):
        before = len(opa.requests)
        via_opa = engine.decide(ctx, resources)
        posts = [(p, b) for m, p, b in opa.requests[before:] if m == "POST"]
        batches = -(-len(resources) // engine.batch_size)
        assert [p for p, _ in posts] == ["/v1/data/aquifer/context/request"] + [
            "/v1/data/aquifer/context/decisions"
        ] * batches
        sent = [r for _, body in posts[1:] for r in body["input"]["resources"]]
        assert sent == [r.as_input() for r in resources], "one round trip per batch of undecided classes"
        assert all(len(body["input"]["resources"]) <= engine.batch_size for _, body in posts[1:])
        assert posts[0][1]["input"] == ctx.as_input()
        before = len(opa.requests)
        engine.decide(ctx, [*resources, Resource("product_docs", "internal", pii_types=("phone",))])
        posts = [b for m, _, b in opa.requests[before:] if m == "POST"]
        assert [b["input"]["resources"] for b in posts] == [
            [Resource("product_docs", "internal", pii_types=("phone",)).as_input()]
        ], "only the classes not decided yet are sent"
        assert via_opa.resources == embedded.decide(ctx, resources).resources
        assert via_opa.request == embedded.decide(ctx).request


def test_server_errors_and_undefined_answers_deny(opa: RecordingOpa) -> None:
    engine = PolicyEngine(OpaBackend(opa.url), POLICIES, CATALOG)
    ctx = RequestContext("support_assistant", "customer_support", "local_smollm2")
    opa.fail_queries = True
    batch = engine.decide(ctx, [Resource("product_docs", "public")])
    assert batch.resources[0].reasons == [POLICY_ENGINE_UNAVAILABLE]
    assert "500" in batch.resources[0].explanations[0]
    opa.fail_queries = False
    opa.data["aquifer"] = {}  # the catalog vanished from the server: every rule is undefined or denies
    assert not engine.decide(
        RequestContext("support_assistant", "x", "local_smollm2"), [Resource("a", "public")]
    ).request.allow
