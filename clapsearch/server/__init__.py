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

Thread model: FastAPI runs the (sync) routes on a thread pool, all sharing one
`clapsearch.library.Library`, which is thread-safe (each thread reads the index through its own
SQLite connection; model forwards take the Embedder's lock; torch and FAISS run one thread per
query, set once). Audio streaming and peaks read files through their own descriptors.
"""

from __future__ import annotations

from clapsearch.server.config import ServerConfig

__all__ = ["ServerConfig"]
