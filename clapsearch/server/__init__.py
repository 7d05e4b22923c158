"""`clapsearch serve`: a web page and a REST API over one index, with the model kept warm.

Modules, one concern each:
- `config.py`    ServerConfig: where, who may connect, request limits.
- `service.py`   SearchService: the ONE object routes call; wraps `clapsearch.library.Library`
                 and `clapsearch.classify` and returns the CLI's `--json` shapes (plus the
                 ids a page needs). All logic lives here, none in the routes.
- `security.py`  host / origin / token checks, security headers, errors -> one-sentence 4xx.
- `routes.py`    the REST endpoints (thin: parse, call the service, return).
- `audio_stream.py`  serving indexed audio by id: identity re-check, HTTP Range, transcoding.
- `peaks.py`     waveform peaks for drawing, cached.
- `uploads.py`   search-by-example uploads: size limit, private temp file, decode in a child
                 process with a timeout.
- `discovery.py` `<index>/server.json`: how other clapsearch commands find a running server.
- `app.py`       the app factory that wires the above; `static/` holds the page.

Thread model: FastAPI runs the (sync) routes on a thread pool. The shared `Library` is NOT
thread-safe (one SQLite connection, lazily loaded model), so `SearchService` serialises every
call into it with one lock; a search is a few ms, so the lock costs little at the loads this
serves (docs/benchmarks.md). Audio streaming and peaks read files without the lock.
"""

from __future__ import annotations

from clapsearch.server.config import ServerConfig

__all__ = ["ServerConfig"]
