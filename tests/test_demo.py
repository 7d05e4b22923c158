"""`python -m clapsearch.demo`: model choice, the shipped sample folder, and one end-to-end run."""

from __future__ import annotations

import pytest
from conftest import ESC50_DIR

from clapsearch import demo
from clapsearch.assets import demo_sounds_dir


def test_sample_folder_is_shipped_and_attributed():
    sounds = sorted(p.name for p in demo_sounds_dir().glob("*.flac"))
    assert sorted(set(demo.QUERIES.values())) == sounds
    attribution = (demo_sounds_dir() / "ATTRIBUTION.md").read_text()
    assert all(f"`{name}`" in attribution for name in sounds)


def test_esc_demo_clips_are_held_out():
    data_prep = pytest.importorskip("trainer.data_prep.demo_sounds")
    test = data_prep.load_split("esc50_test")
    assert {src for src, _ in data_prep.ESC10.values()} <= test
    if (ESC50_DIR / "esc50.csv").is_file():
        import csv

        esc10 = {
            r["filename"]
            for r in csv.DictReader(open(ESC50_DIR / "esc50.csv"))
            if r["esc10"] == "True"
        }
        assert {src for src, _ in data_prep.ESC10.values()} <= esc10  # CC BY subset only


def test_model_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAPSEARCH_MODEL", "/env/model")
    monkeypatch.setattr(demo, "default_model_dir", lambda: tmp_path / "packaged")
    assert demo.pick_model("/given", tmp_path).name == "/given"
    assert demo.pick_model(None, tmp_path).name == "/env/model"
    monkeypatch.delenv("CLAPSEARCH_MODEL")
    assert demo.pick_model(None, tmp_path).name == str(tmp_path / "packaged")


@pytest.mark.slow
def test_demo_end_to_end_with_random_model(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAPSEARCH_MODEL", raising=False)
    monkeypatch.setattr(demo, "default_model_dir", lambda: None)
    lines: list[str] = []
    queries = {"a dog barking": "dog.flac", "white noise": "white_noise.flac"}
    answers = demo.run_demo(tmp_path, queries=queries, k=2, out=lines.append)
    text = "\n".join(lines)
    assert "RANDOM model" in text and "queries ranked the expected sound first" in text
    assert [a.query for a in answers] == list(queries)
    names = {p.name for p in demo_sounds_dir().glob("*.flac")}
    for a in answers:
        assert len(a.hits) == 2 and {n for n, _ in a.hits} <= names
        assert a.hits[0][1] >= a.hits[1][1]
    assert (tmp_path / "index" / "index.db").is_file()


@pytest.mark.slow
def test_packaged_default_model_is_small_and_hears_the_demo_sounds():
    """The shipped model (when packaged) fits the wheel budget and tells broad sound families
    apart on demo clips it never trained on."""
    import numpy as np

    from clapsearch.assets import default_model_dir
    from clapsearch.audio import load_audio
    from clapsearch.sources import load_embedder

    folder = default_model_dir()
    if folder is None:
        pytest.skip("no default model packaged in this checkout")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 60e6
    emb = load_embedder(str(folder), device="cpu", precision="fp32")
    pairs = {
        "a man speaking": "hello.flac",
        "a piano playing a melody": "piano.flac",
        "white noise": "white_noise.flac",
        "a pure sine tone": "beep_440hz.flac",
    }
    waves = [load_audio(str(demo_sounds_dir() / f), emb.sample_rate) for f in pairs.values()]
    sim = emb.embed_text(list(pairs)) @ emb.embed_audio(waves).T
    assert (sim.argmax(axis=1) == np.arange(len(pairs))).all()
