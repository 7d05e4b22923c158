"""`clapsearch serve`'s REST API in-process (FastAPI TestClient) over small real indexes: the
answers equal the library's, audio is streamed and transcoded right, and every hostile
request gets a 4xx with one sentence, never a 500 or a traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat

import numpy as np
import pytest
import soundfile as sf
from conftest import CLOTHO_DIR, esc50_files, write_test_index

from clapsearch.classify import classify
from clapsearch.index.ranking import SearchFilter
from clapsearch.library import Library

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from clapsearch.server import discovery  # noqa: E402
from clapsearch.server.app import create_app  # noqa: E402
from clapsearch.server.config import ServerConfig  # noqa: E402
from clapsearch.server.peaks import compute_peaks  # noqa: E402

BASE = "http://127.0.0.1:8765"


def one_sentence(r) -> str:
    """The error body: JSON {"error": one sentence}, no traceback."""
    assert r.headers["content-type"].startswith("application/json"), r.text
    msg = r.json()["error"]
    assert msg and "\n" not in msg and "Traceback" not in msg and msg.endswith("."), msg
    return msg


@pytest.fixture(scope="module")
def client(tiny_index, words_embedder):
    config = ServerConfig(index=tiny_index[0], max_upload_bytes=2 << 20, max_upload_seconds=60)
    app = create_app(config, embedder=words_embedder, warm=False, discovery_file=False)
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def lib(tiny_index, words_embedder):
    with Library(tiny_index[0], embedder=words_embedder, notify=lambda m: None) as library:
        yield library


# --- answers equal the library's -------------------------------------------------------------
def test_text_search_equals_library(client, lib):
    queries = ["a dog barks in the rain", "church bells"]
    r = client.get("/api/search", params={"q": queries, "k": 5})
    assert r.status_code == 200
    answer = r.json()["queries"]
    assert [a["query"] for a in answer] == queries
    for a, hits in zip(answer, lib.search(queries, k=5), strict=True):
        assert [h["path"] for h in a["results"]] == [h.path for h in hits]
        for got, want in zip(a["results"], hits, strict=True):
            assert {
                k: got[k] for k in ("path", "score", "start", "end", "missing")
            } == pytest.approx(want.to_dict())
            assert set(got) == {"path", "score", "start", "end", "missing", "file_id", "duration"}
    # POST with a JSON body: the same answer
    r2 = client.post("/api/search", json={"q": queries, "k": 5})
    assert [[h["path"] for h in a["results"]] for a in r2.json()["queries"]] == [
        [h["path"] for h in a["results"]] for a in answer
    ]


def test_filters_and_segments(client, lib):
    clotho = str(CLOTHO_DIR / "evaluation")
    r = client.get("/api/search", params={"q": "birds", "k": 3, "prefix": clotho})
    paths = [h["path"] for h in r.json()["queries"][0]["results"]]
    assert len(paths) == 3 and all(p.startswith(clotho) for p in paths)
    want = lib.search("birds", k=3, filters=SearchFilter(path_prefix=clotho))
    assert paths == [h.path for h in want]
    r = client.get("/api/search", params={"q": "wind", "k": 20, "segments": "true"})
    hits = r.json()["queries"][0]["results"]
    assert len({h["path"] for h in hits}) < len(hits)  # long files give several windows
    r = client.get("/api/search", params={"q": "wind", "k": 5, "min_duration": 10})
    assert all(h["duration"] >= 10 for h in r.json()["queries"][0]["results"])


def test_file_metadata_and_similar(client, lib, tiny_index):
    hit = client.get("/api/search", params={"q": "water", "k": 1}).json()["queries"][0]
    hit = hit["results"][0]
    info = client.get(f"/api/files/{hit['file_id']}").json()
    assert info["path"] == hit["path"] and info["name"] == os.path.basename(hit["path"])
    spans, _ = tiny_index[1][hit["path"]]
    got = [v for s in info["segments"] for v in (s["start"], s["end"])]
    assert got == pytest.approx([v for span in spans for v in span])
    r = client.get(f"/api/files/{hit['file_id']}/similar", params={"k": 4})
    got = [h["path"] for h in r.json()["queries"][0]["results"]]
    assert got == [h.path for h in lib.similar_to(hit["path"], k=4)]
    assert hit["path"] not in got


def test_similar_to_one_window(client, lib, tiny_index, words_embedder):
    path = next(p for p, (spans, _) in tiny_index[1].items() if len(spans) >= 3)
    spans, vecs = tiny_index[1][path]
    fid = client.get("/api/search", params={"q": "x", "k": 16}).json()["queries"][0]["results"]
    fid = next(h["file_id"] for h in fid if h["path"] == path)
    at = spans[2][0] + 0.5
    r = client.get(f"/api/files/{fid}/similar", params={"k": 3, "at": at})
    got = [h["path"] for h in r.json()["queries"][0]["results"]]
    want = lib.search_vectors(vecs[2][None, :] / np.linalg.norm(vecs[2]), k=4)[0]
    assert got == [h.path for h in want if h.path != path][:3]
    assert client.get(f"/api/files/{fid}/similar", params={"at": 1e6}).status_code == 400


def test_upload_equals_search_audio(client, lib):
    clip = esc50_files(14)[13]  # not in the index
    r = client.post(
        "/api/search/audio", params={"k": 4, "name": clip.name}, content=clip.read_bytes()
    )
    assert r.status_code == 200, r.text
    answer = r.json()["queries"][0]
    assert answer["query"] == clip.name
    want = lib.search_audio(clip, k=4)
    assert [h["path"] for h in answer["results"]] == [h.path for h in want]
    assert [h["score"] for h in answer["results"]] == pytest.approx([h.score for h in want])


def test_upload_of_an_indexed_file_leaves_it_out(client, tiny_index):
    path = next(p for p in sorted(tiny_index[1]) if p.endswith(".flac"))
    with open(path, "rb") as fh:
        r = client.post("/api/search/audio", params={"k": 5}, content=fh.read())
    assert r.status_code == 200, r.text
    assert path not in [h["path"] for h in r.json()["queries"][0]["results"]]


def test_classify_equals_library(client, words_embedder):
    hit = client.get("/api/search", params={"q": "dog", "k": 1}).json()["queries"][0]
    hit = hit["results"][0]
    r = client.post(
        f"/api/files/{hit['file_id']}/classify",
        json={"labels": "dog, rain, bells", "timeline": True, "top": 2},
    )
    assert r.status_code == 200, r.text
    (want,) = classify(
        [hit["path"]], ["dog", "rain", "bells"], top=2, timeline=True, embedder=words_embedder
    )
    assert same_json(r.json(), dict(want.to_dict(), file_id=hit["file_id"]))


def same_json(a, b) -> bool:
    """Equal JSON values, floats to 1e-6."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_json, a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, abs=1e-6)
    return a == b


def test_status_failures_folders_openapi(client, tiny_index):
    st = client.get("/api/status").json()
    assert st["files"] == len(tiny_index[1]) and st["index"] == str(tiny_index[0])
    assert st["segments"] == sum(len(s) for s, _ in tiny_index[1].values())
    assert client.get("/api/failures").json() == {"errors": []}
    folders = {f["folder"]: f["files"] for f in client.get("/api/folders").json()["folders"]}
    assert folders == {
        str(esc50_files()[0].parent): 12,
        str(CLOTHO_DIR / "evaluation"): 4,
    }
    schema = client.get("/api/openapi.json").json()
    for path in (
        "/api/search",
        "/api/search/audio",
        "/api/files/{file_id}",
        "/api/files/{file_id}/audio",
        "/api/files/{file_id}/segment",
        "/api/files/{file_id}/peaks",
        "/api/files/{file_id}/similar",
        "/api/files/{file_id}/classify",
        "/api/status",
        "/api/failures",
        "/api/folders",
        "/api/health",
    ):
        assert path in schema["paths"], path
    filters = {"k", "prefix", "glob", "min_duration", "max_duration", "segments"}
    for path, method in [
        ("/api/search", "get"),
        ("/api/search/audio", "post"),
        ("/api/files/{file_id}/similar", "get"),
    ]:  # the shared filter parameters, each documented, on every route that takes them
        params = {p["name"]: p for p in schema["paths"][path][method]["parameters"]}
        assert filters <= params.keys() and all(params[n].get("description") for n in filters)
    page = client.get("/")
    assert page.status_code == 200 and "<title>clapsearch</title>" in page.text
    assert client.get("/docs").status_code == 404  # no CDN-backed docs page


# --- audio -----------------------------------------------------------------------------------
def _first_id(client, pattern):
    hits = client.get("/api/search", params={"q": "x", "k": 100}).json()["queries"][0]["results"]
    return next(h for h in hits if pattern in h["path"])


def test_audio_with_ranges(client):
    hit = _first_id(client, ".flac")
    data = open(hit["path"], "rb").read()
    url = f"/api/files/{hit['file_id']}/audio"
    r = client.get(url)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "audio/flac" and r.headers["accept-ranges"] == "bytes"
    n = len(data)
    cases = {"bytes=0-99": (0, 99), "bytes=100-": (100, n - 1), "bytes=-50": (n - 50, n - 1)}
    cases[f"bytes=10-{n + 500}"] = (10, n - 1)
    for rng, (a, b) in cases.items():
        r = client.get(url, headers={"Range": rng})
        assert r.status_code == 206 and r.content == data[a : b + 1], rng
        assert r.headers["content-range"] == f"bytes {a}-{b}/{n}"
    r = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    for junk in ("bytes=abc", "bytes=0-1,5-9", "items=0-5", "bytes=9-2"):
        r = client.get(url, headers={"Range": junk})
        assert r.status_code == 200 and r.content == data, junk
    assert client.head(url).headers["content-length"] == str(len(data))
    r = client.get(url, params={"download": "true"})
    assert r.headers["content-disposition"].startswith("attachment;")
    wav = _first_id(client, ".wav")
    assert client.get(f"/api/files/{wav['file_id']}/audio").headers["content-type"] == "audio/wav"


@pytest.fixture()
def own_index(tmp_path, words_embedder):
    """A writable index over copies (AIFF, u-law WAV, FLAC, stereo WAV) in tmp_path."""
    lib = tmp_path / "lib"
    lib.mkdir()
    src = esc50_files(2)
    y, sr = sf.read(src[0], dtype="float32")
    stereo = np.stack([y, -0.5 * y], axis=1)
    sf.write(lib / "stereo.aiff", stereo, sr, subtype="PCM_16", format="AIFF")
    sf.write(lib / "ulaw.wav", y, sr, subtype="ULAW")
    shutil.copy(src[1], lib / "plain.flac")
    shutil.copy(src[1], lib / "other.flac")
    files = sorted(lib.iterdir())
    write_test_index(tmp_path / "idx", words_embedder, files)
    config = ServerConfig(index=tmp_path / "idx")
    app = create_app(config, embedder=words_embedder, warm=False, discovery_file=False)
    with TestClient(app, base_url=BASE) as c:
        hits = c.get("/api/search", params={"q": "x", "k": 10}).json()["queries"][0]["results"]
        ids = {os.path.basename(h["path"]): h["file_id"] for h in hits}
        yield c, lib, ids, stereo, sr


def test_transcoded_formats_play_as_wav_with_ranges(own_index):
    client, lib, ids, stereo, sr = own_index
    r = client.get(f"/api/files/{ids['stereo.aiff']}/audio")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    y, rate = sf.read(io.BytesIO(r.content), dtype="float32")
    assert rate == sr and y.shape == stereo.shape  # channels kept
    np.testing.assert_allclose(y, stereo, atol=1.5 / 32767)
    whole = r.content
    parts = b"".join(
        client.get(
            f"/api/files/{ids['stereo.aiff']}/audio", headers={"Range": f"bytes={a}-{a + 999}"}
        ).content
        for a in range(0, len(whole), 1000)
    )
    assert parts == whole  # byte ranges of the transcoded stream line up
    r = client.get(f"/api/files/{ids['ulaw.wav']}/audio")  # a WAV codec browsers lack
    assert r.headers["content-type"] == "audio/wav" and r.content[20:22] == b"\x01\x00"  # PCM
    seg = client.get(f"/api/files/{ids['stereo.aiff']}/segment", params={"start": 1, "end": 2.5})
    y, _ = sf.read(io.BytesIO(seg.content), dtype="float32")
    np.testing.assert_allclose(y, stereo[sr : int(2.5 * sr)], atol=1.5 / 32767)


def test_changed_swapped_and_deleted_files_are_refused(own_index, tmp_path):
    client, lib, ids, _, _ = own_index
    target = lib / "plain.flac"
    fid = ids["plain.flac"]
    assert client.get(f"/api/files/{fid}/audio").status_code == 200
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours\n")
    target.unlink()
    target.symlink_to(secret)  # swapped for a link to elsewhere
    for url in ("audio", "peaks", "segment?start=0&end=1"):
        r = client.get(f"/api/files/{fid}/{url}")
        assert r.status_code == 409 and "not yours" not in r.text
        one_sentence(r)
    target.unlink()
    target.symlink_to(lib / "other.flac")  # a link to another audio file: same size, not time
    os.utime(lib / "other.flac", ns=(0, 0))
    assert client.get(f"/api/files/{fid}/audio").status_code == 409
    target.unlink()
    os.mkfifo(target)  # a FIFO must not hang the server
    assert client.get(f"/api/files/{fid}/audio").status_code == 409
    target.unlink()
    r = client.get(f"/api/files/{fid}/audio")
    assert r.status_code == 404
    one_sentence(r)


def test_peaks_match_the_samples_and_are_cached(client, tiny_index):
    from clapsearch.audio import load_audio

    hit = _first_id(client, ".wav")  # a Clotho clip, 15-30 s
    url = f"/api/files/{hit['file_id']}/peaks"
    p = client.get(url, params={"n": 100}).json()
    assert p["buckets"] == 100 and len(p["peaks"]) == 200
    y = load_audio(hit["path"])
    edges = -((-np.arange(101) * len(y)) // 100)
    lo = [min(0.0, y[a:b].min()) for a, b in zip(edges[:-1], edges[1:])]
    hi = [max(0.0, y[a:b].max()) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(p["peaks"][0::2], lo, atol=1e-4)
    np.testing.assert_allclose(p["peaks"][1::2], hi, atol=1e-4)
    cache = client.app.state.peaks
    before = cache.computed
    assert client.get(url, params={"n": 100}).json() == p
    assert cache.computed == before
    lo2, hi2 = compute_peaks(hit["path"], 7)  # fewer buckets than windows, uneven edges
    assert len(lo2) == 7 and hi2.max() == pytest.approx(max(hi), abs=1e-4)


# --- hostile requests ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/api/files/../../etc/passwd",
        "/api/files/..%2f..%2fetc%2fpasswd/audio",
        "/api/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd/audio",
        "/api/files//etc/passwd/audio",
        "/api/files/1%2f..%2f..%2fetc%2fpasswd/audio",
        "/api/files/-1/audio",
        "/api/files/0/peaks",
        "/api/files/99999999999999999999999/audio",
        "/api/files/1e3/audio",
        "/api/files/999999/audio",
        "/api/files/999999",
        "/api/files/999999/similar",
        "/api/files/999999/peaks",
        "/api/files/999999/segment?start=0&end=1",
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/etc/passwd",
        "/api/search?q=dog&k=100000000000",
        "/api/search?q=dog&k=0",
        "/api/search?q=dog&k=-5",
        "/api/search?q=dog&k=ten",
        "/api/search?q=",
        "/api/search",
        "/api/search?q=dog&min_duration=-1",
        "/api/search?q=dog&min_duration=nan",
        "/api/search?q=dog&min_duration=5&max_duration=1",
        "/api/files/1/peaks?n=100000000",
        "/api/files/1/segment?start=5&end=1",
        "/api/files/1/segment?start=0&end=100000",
    ],
)
def test_hostile_urls_get_one_sentence_4xx(client, url):
    r = client.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    one_sentence(r)
    assert "root:" not in r.text


def test_too_many_and_too_long_queries(client):
    r = client.get("/api/search", params={"q": ["a"] * 40})
    assert r.status_code == 400 and "32" in one_sentence(r)
    r = client.post("/api/search", json={"q": "x" * 5000})
    assert r.status_code == 400
    one_sentence(r)


@pytest.mark.parametrize(
    "body,ctype",
    [
        (b"{bad json", "application/json"),
        (b'{"q": "dog", "k": "many"}', "application/json"),
        (b'{"q": 5}', "application/json"),
        (b'{"k": 3}', "application/json"),
        (b'{"q": "dog", "drop_tables": true}', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"q=dog", "application/x-www-form-urlencoded"),
        (b'{"q": "' + b"\\ud800" + b'"}', "application/json"),
    ],
)
def test_malformed_json_gets_one_sentence_4xx(client, body, ctype):
    r = client.post("/api/search", content=body, headers={"Content-Type": ctype})
    assert 400 <= r.status_code < 500, (body, r.text)
    one_sentence(r)


def test_classify_hostile_bodies(client):
    fid = _first_id(client, ".flac")["file_id"]
    for body in (
        {"labels": []},
        {"labels": " , "},
        {"labels": "a", "template": "no slot"},
        {"labels": "a", "top": 0},
        {"labels": ["x"] * 300},
        {},
    ):
        r = client.post(f"/api/files/{fid}/classify", json=body)
        assert 400 <= r.status_code < 500, (body, r.text)
        one_sentence(r)
    assert client.post("/api/files/999999/classify", json={"labels": "a"}).status_code == 404


def _hostile_uploads() -> dict[str, bytes]:
    """The indexer tests' hostile files, and a few more."""
    good = esc50_files(3)[2].read_bytes()
    return {
        "empty": b"",
        "text": b"this is not audio\n" * 50,
        "cut_flac": good[: len(good) // 3],
        "random": b"\x00" + np.random.default_rng(0).bytes(4000),
        "png": b"\x89PNG\r\n\x1a\n" + np.random.default_rng(2).bytes(1000),
        "riff_lies": b"RIFF\xff\xff\xff\x7fWAVEfmt " + b"\x00" * 40,
    }


@pytest.mark.parametrize("name", sorted(_hostile_uploads()))
def test_hostile_uploads_get_one_sentence_4xx(client, name):
    r = client.post("/api/search/audio", content=_hostile_uploads()[name])
    assert r.status_code == 422, r.text
    assert one_sentence(r).startswith("The upload")


def test_oversized_and_overlong_uploads(client, tmp_path):
    big = b"RIFF" + b"\x00" * (3 << 20)
    r = client.post("/api/search/audio", content=big)  # Content-Length over the limit
    assert r.status_code == 413
    one_sentence(r)

    def chunks():  # no Content-Length: refused while streaming
        for _ in range(40):
            yield b"\x00" * (100 << 10)

    r = client.post("/api/search/audio", content=chunks())
    assert r.status_code == 413
    long = tmp_path / "long.flac"
    sf.write(long, np.zeros(8000 * 120, np.float32), 8000)  # 2 min of silence, small file
    r = client.post("/api/search/audio", content=long.read_bytes())
    assert r.status_code == 413 and "60" in one_sentence(r)
    assert not list(tmp_path.glob("clapsearch-upload-*"))


def test_decode_timeout_is_a_4xx(tiny_index, words_embedder):
    config = ServerConfig(index=tiny_index[0], decode_timeout_s=0.001)
    app = create_app(config, embedder=words_embedder, warm=False, discovery_file=False)
    with TestClient(app, base_url=BASE) as c:
        r = c.post("/api/search/audio", content=esc50_files(1)[0].read_bytes())
    assert r.status_code == 422 and "longer than" in one_sentence(r)


# --- who may connect -------------------------------------------------------------------------
def test_headers_host_and_origin(client):
    r = client.get("/api/health", headers={"Origin": BASE})
    assert r.status_code == 200
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert not any(h.lower().startswith("access-control") for h in r.headers)
    r = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    one_sentence(r)
    r = client.get("/api/search?q=dog", headers={"Host": "evil.example:8765"})
    assert r.status_code == 403  # DNS rebinding: another name for 127.0.0.1
    one_sentence(r)
    assert client.get("/api/health", headers={"Host": "localhost:8765"}).status_code == 200


def test_token(tiny_index, words_embedder):
    config = ServerConfig(index=tiny_index[0], token="s3cret-token-123")
    app = create_app(config, embedder=words_embedder, warm=False, discovery_file=False)
    with TestClient(app, base_url=BASE) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "clapsearch_token=x"}):
            r = c.get("/api/status", headers=headers)
            assert r.status_code == 401
            one_sentence(r)
        assert c.get("/", params={"token": "nope"}).status_code == 401
        ok = {"Authorization": "Bearer s3cret-token-123"}
        assert c.get("/api/status", headers=ok).status_code == 200
        r = c.get("/", params={"token": "s3cret-token-123"})
        assert r.status_code == 200
        assert (
            "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
        )
        assert c.get("/api/status").status_code == 200  # the cookie now
    cfg, generated = ServerConfig(index=tiny_index[0], host="0.0.0.0").with_token()
    assert generated and len(cfg.token) >= 24 and cfg.needs_token
    cfg, generated = ServerConfig(index=tiny_index[0], host="127.0.0.2").with_token()
    assert not generated and cfg.token is None


def test_discovery_file(tiny_index, words_embedder, tmp_path):
    idx = tmp_path / "idx"
    shutil.copytree(tiny_index[0], idx)
    config = ServerConfig(index=idx, port=8799, token="tok-tok-tok-1")
    app = create_app(config, embedder=words_embedder, warm=False)
    with TestClient(app, base_url=BASE):
        path = idx / "server.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        info = json.loads(path.read_text())
        assert info["port"] == 8799 and info["pid"] == os.getpid()
        assert info["token_required"] is True and info["token"] == "tok-tok-tok-1"
        assert discovery.read(idx) == info
        assert not [p for p in idx.iterdir() if ".tmp" in p.name]
    assert not path.exists()  # removed on shutdown


# --- the command -----------------------------------------------------------------------------
def test_serve_command_errors_are_one_sentence(tiny_index, tmp_path, capsys):
    import socket

    from conftest import run_cli

    code, _, err = run_cli(["serve", "--index", str(tmp_path / "none")], capsys)
    assert code == 1 and err.startswith("error: No index at") and err.count("\n") == 1
    code, _, err = run_cli(["serve", "--index", str(tiny_index[0]), "--token", "a b"], capsys)
    assert code == 2 and "token" in err and err.count("\n") == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        code, _, err = run_cli(["serve", "--index", str(tiny_index[0]), "--port", port], capsys)
    assert code == 1 and "pick another with --port" in err and err.count("\n") == 1


def test_concurrent_requests_get_their_own_answers(client):
    """The shared Library serves request threads at once (no server-wide lock): each answer
    is the one its query gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    queries = ["dog", "rain on a roof", "church bells", "wind", "a door", "birds", "water"]
    alone = {
        q: client.get("/api/search", params={"q": q, "k": 5}).json()["queries"][0] for q in queries
    }
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda q: client.get("/api/search", params={"q": q, "k": 5}).json()["queries"][0],
                queries * 4,
            )
        )
    for answer in answers:
        want = alone[answer["query"]]
        assert [h["path"] for h in answer["results"]] == [h["path"] for h in want["results"]]


def test_request_threads_search_on_one_openmp_thread(tiny_index, words_embedder):
    """OpenMP's thread count is per thread: a request thread started after the Library set it
    must still search on one (else FAISS fans out and waits on barriers: 75 ms against 0.2 ms
    per flat search on the loaded 2-core machine)."""
    import threading

    import faiss

    lib = Library(tiny_index[0], embedder=words_embedder, notify=lambda m: None)
    lib.search("warm", k=1)  # sets the count in this thread
    seen = []

    def request():
        before = faiss.omp_get_max_threads()
        lib.search("dog", k=3)
        seen.append((before, faiss.omp_get_max_threads()))

    t = threading.Thread(target=request)
    t.start()
    t.join()
    lib.close()
    assert seen[0][1] == 1, seen


def test_listening_socket_is_tcp_so_connections_get_nodelay():
    """asyncio sets TCP_NODELAY on accepted connections only when the listening socket's
    protocol is IPPROTO_TCP; with protocol 0 every keep-alive answer (headers, then body)
    waited ~40 ms for the client's delayed ACK (docs/benchmarks.md, Serving)."""
    import asyncio
    import socket

    from clapsearch.cli.serve import _bind

    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def main():
        def handler(reader, writer):
            raw = writer.get_extra_info("socket")
            seen.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handler, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert seen and seen[0] != 0
