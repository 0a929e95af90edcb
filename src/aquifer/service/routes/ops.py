"""Operating the service: ``/healthz``, ``/readyz``, ``/metrics``, the API docs (``/docs``, ``/redoc``) and the JSON
schemas of Aquifer's custom OpenLineage facets (``/openlineage/facets/<name>.json``, their ``_schemaURL``).

The docs are served with their assets from this process (fastapi-offline ships Swagger UI and ReDoc): FastAPI's
default pages load them from a CDN, and render blank on the air-gapped machines Aquifer is for.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aquifer.export.openlineage import FACET_SCHEMAS
from aquifer.service.deps import MetricsDep, RetrieverDep, WarmerDep
from aquifer.service.errors import NotFound

router = APIRouter(tags=["ops"])

DOCS_ASSETS = "/docs-assets"
docs_assets = StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready, with what is missing"}})
def readyz(retriever: RetrieverDep, warmer: WarmerDep) -> JSONResponse:
    problems = retriever.readiness()
    body = {
        "status": "ready" if not problems else "not_ready",
        "problems": problems,
        "policy_revision": retriever.engine.revision,
        "index_version": retriever.index.version(),
        "embedding_model": retriever.embedder.name,
        "embedding_device": retriever.embedder.device,
        "prefilter": {
            "warm": warmer is not None and warmer.warmed is not None,
            "warm_up_seconds": warmer.last_seconds if warmer else None,
        },
    }
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/openlineage/facets/{name}.json", responses={404: {"description": "No such facet"}})
def openlineage_facet(name: str) -> FileResponse:
    """The JSON schema of one of Aquifer's custom OpenLineage facets (``AquiferDeltaRunFacet``)."""
    known = {p.stem: p for p in FACET_SCHEMAS.glob("*.json")}
    if name not in known:
        raise NotFound(f"no OpenLineage facet {name[:80]!r}; known: {sorted(known)}", field="name")
    return FileResponse(known[name], media_type="application/schema+json")


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(metrics: MetricsDep) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title="Aquifer API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=str(request.app.openapi_url),
        title="Aquifer API",
        redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )
