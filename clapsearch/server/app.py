"""The app factory: `create_app(config)` wires the service, the guard, the routes and the page.

    app = create_app(ServerConfig(index=Path("idx")))      # what `clapsearch serve` runs
    app = create_app(config, embedder=tiny, warm=False)    # tests: a model already loaded

The OpenAPI schema is served at `/api/openapi.json`; the interactive docs pages are off (they
load scripts from a CDN, and the page must work offline). On startup the model is loaded and
warmed (`warm=True`) and `<index>/server.json` is written (`discovery.py`, `discovery=True`);
on shutdown that file is removed and the index closed.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from clapsearch.server import discovery
from clapsearch.server.config import ServerConfig
from clapsearch.server.peaks import PeaksCache
from clapsearch.server.routes import router
from clapsearch.server.security import Guard, install_error_handlers
from clapsearch.server.service import SearchService

STATIC = files("clapsearch.server") / "static"


def create_app(
    config: ServerConfig,
    *,
    embedder=None,
    warm: bool = True,
    discovery_file: bool = True,
) -> FastAPI:
    service = SearchService(config, embedder=embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            service.warm()
        if discovery_file:
            meta = service.lib.store.meta
            name = meta.model_identity.name if meta.model_identity is not None else ""
            discovery.write(config, meta.model, name)
        try:
            yield
        finally:
            if discovery_file:
                discovery.remove(config.index)
            service.close()

    app = FastAPI(
        title="clapsearch",
        summary="Search, browse and listen to an indexed sound library (docs/api.md).",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.peaks = PeaksCache()
    install_error_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    app.add_middleware(Guard, config=config)
    return app


__all__ = ["create_app"]
