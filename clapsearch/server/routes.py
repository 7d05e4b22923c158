"""The REST endpoints (docs/api.md). Thin: parse and validate, call `SearchService` or the
audio/peaks/upload helpers, return. Sync routes run on the server's thread pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from clapsearch.index.ranking import SearchFilter
from clapsearch.server import audio_stream, uploads
from clapsearch.server.peaks import MAX_BUCKETS, MIN_BUCKETS
from clapsearch.server.service import Query as SearchQuery

router = APIRouter(prefix="/api")
FileId = Annotated[int, Path(ge=1, le=2**62, description="A file's id in the index.")]


class Filters(BaseModel):
    """Which files a search may return (all given ones must hold)."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(10, description="Results per query (1 to the server's max_k, 500).")
    prefix: str | None = Field(None, description="Only paths under this folder.")
    glob: str | None = Field(None, description="Only paths matching this shell pattern.")
    min_duration: float | None = Field(None, description="Files at least this long (s).")
    max_duration: float | None = Field(None, description="Files at most this long (s).")
    segments: bool = Field(False, description="Every matching window, not each file's best.")

    def query(self) -> SearchQuery:
        filt = SearchFilter(self.glob, self.prefix, self.min_duration, self.max_duration)
        return SearchQuery(self.k, filt, self.segments)


async def filter_params(
    k: int = Query(10, description="Results per query (1 to the server's max_k, 500)."),
    prefix: str | None = Query(None, description="Only paths under this folder."),
    glob: str | None = Query(None, description="Only paths matching this shell pattern."),
    min_duration: float | None = Query(None, description="Files at least this long (s)."),
    max_duration: float | None = Query(None, description="Files at most this long (s)."),
    segments: bool = Query(False, description="Every matching window, not each file's best."),
) -> SearchQuery:
    """`Filters` as query parameters, for every route whose body is not JSON (one definition;
    async, so it runs on the event loop instead of costing a thread hop)."""
    return Filters(
        k=k,
        prefix=prefix,
        glob=glob,
        min_duration=min_duration,
        max_duration=max_duration,
        segments=segments,
    ).query()


FilterParams = Annotated[SearchQuery, Depends(filter_params)]


class SearchBody(Filters):
    q: list[str] | str = Field(..., description="One query or a list of them.")


class ClassifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[str] | str = Field(..., description='A list, or "dog, rain, siren".')
    template: str | None = Field(None, description="Prompt template (default: the CLI's).")
    multi_label: bool = False
    top: int | None = Field(5, ge=1, description="Best labels kept (per window too).")
    timeline: bool = Field(False, description="Also label every window.")


def _svc(request: Request):
    return request.app.state.service


@router.get("/health")
def health() -> dict:
    """Liveness: `{"ok": true}`."""
    return {"ok": True}


@router.get("/status")
def status(request: Request) -> dict:
    """`clapsearch status --json`, plus `index` (the folder)."""
    return _svc(request).status()


@router.get("/failures")
def failures(request: Request) -> dict:
    """The files that could not be indexed: `{"errors": [{"path", "reason", "detail"}]}`."""
    return _svc(request).failures()


@router.get("/folders")
def folders(request: Request) -> dict:
    """Every folder holding indexed files: `{"folders": [{"folder", "files"}]}`."""
    return _svc(request).folders()


@router.get("/search")
def search_get(
    request: Request,
    query: FilterParams,
    q: list[str] = Query(..., description="The query; repeat q for several."),
) -> dict:
    """Text search: `{"queries": [{"query", "results": [hit]}], "notes": [str]}`."""
    return _svc(request).search_text(q, query)


@router.post("/search")
def search_post(request: Request, body: SearchBody = Body(...)) -> dict:
    """Text search with a JSON body (long or many queries); same answer as GET."""
    texts = [body.q] if isinstance(body.q, str) else body.q
    return _svc(request).search_text(texts, body.query())


@router.post(
    "/search/audio",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "required": True,
        }
    },
)
async def search_audio(
    request: Request,
    query: FilterParams,
    name: str = Query("upload", max_length=255, description="A label for the query."),
) -> dict:
    """Search by example: the request body is an audio file (raw bytes, any format the
    indexer reads), size-limited, decoded in a child process, never stored."""
    service = _svc(request)
    cfg = service.config
    query = service.check(query)
    uploads.check_length(request.headers.get("content-length"), cfg.max_upload_bytes)
    rate = await run_in_threadpool(service.expected_rate)
    with uploads.private_dir() as folder:
        path = await uploads.receive(request.stream(), folder, cfg.max_upload_bytes)
        wave = await run_in_threadpool(
            uploads.decode, path, rate, cfg.max_upload_seconds, cfg.decode_timeout_s
        )
        return await run_in_threadpool(service.search_waveform, name, path, wave, query)


@router.get("/files/{file_id}")
def file_info(request: Request, file_id: FileId) -> dict:
    """An indexed file: path, name, folder, duration, rate, channels, size, its windows."""
    return _svc(request).file(file_id)


@router.get("/files/{file_id}/similar")
def similar(
    request: Request,
    file_id: FileId,
    query: FilterParams,
    at: float | None = Query(None, description="Seconds: use the window at this time."),
) -> dict:
    """More like this: files similar to an indexed file (or one of its windows, `at`)."""
    return _svc(request).similar(file_id, at, query)


@router.post("/files/{file_id}/classify")
def classify(request: Request, file_id: FileId, body: ClassifyBody = Body(...)) -> dict:
    """Zero-shot labels for an indexed file: `clapsearch classify --json`'s object."""
    from clapsearch.classify import parse_labels

    labels = parse_labels(body.labels) if isinstance(body.labels, str) else body.labels
    return _svc(request).classify(
        file_id, labels, body.template, body.multi_label, body.top, body.timeline
    )


@router.head("/files/{file_id}/audio", include_in_schema=False)
@router.get("/files/{file_id}/audio")
def audio(
    request: Request,
    file_id: FileId,
    download: bool = Query(False, description="As an attachment (save / drag out)."),
):
    """The file's audio, with HTTP Range; transcoded to WAV when browsers cannot play it."""
    info = _svc(request).indexed_file(file_id)
    opened = audio_stream.open_indexed(info)
    return audio_stream.audio_response(opened, request.headers.get("range"), download)


@router.get("/files/{file_id}/segment")
def segment(
    request: Request,
    file_id: FileId,
    start: float = Query(..., ge=0, description="Seconds."),
    end: float = Query(..., gt=0, description="Seconds."),
):
    """A span of the file as 16-bit WAV (Range supported)."""
    service = _svc(request)
    opened = audio_stream.open_indexed(service.indexed_file(file_id))
    try:
        stream = audio_stream.segment_stream(opened, start, end, service.config.max_segment_seconds)
    except Exception:
        opened.close()
        raise
    name = f"{info_name(opened)}_{start:.2f}-{end:.2f}.wav"
    return audio_stream.wav_response(opened, stream, name, request.headers.get("range"))


def info_name(opened) -> str:
    import os

    return os.path.splitext(os.path.basename(opened.info.record.path))[0]


@router.get("/files/{file_id}/peaks")
def peaks(
    request: Request,
    file_id: FileId,
    n: int = Query(800, ge=MIN_BUCKETS, le=MAX_BUCKETS, description="Buckets."),
) -> dict:
    """Waveform peaks: `{"file_id", "duration", "buckets", "peaks": [min, max, ...]}`."""
    opened = audio_stream.open_indexed(_svc(request).indexed_file(file_id))
    try:
        return request.app.state.peaks.get(opened, n)
    finally:
        opened.close()
