"""The Debian harvest: licence filter, caption map, speech captions, clip cutting and the
end-to-end manifest on a fake unpacked package (no network, no apt)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from trainer.data_prep import harvest_debian as H
from trainer.data_prep.caption_rules import CAPTION_MAP
from trainer.data_prep.captions import CaptionMap, Rule, words
from trainer.data_prep.debian_sources import DebianSource
from trainer.data_prep.licences import CopyrightPolicy, allowed, copyleft, family

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: game

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: data/sounds/nc/*
Copyright: 2020 Other
License: CC-BY-NC-3.0

Files: data/sounds/free/*
 data/extra.ogg
License: CC0-1.0

Files: debian/*
License: GPL-2+

License: GPL-2+
 This program is free software; you can redistribute it
 under the terms of the GNU General Public License.
"""


@pytest.mark.parametrize(
    "name,fam",
    [
        ("GPL-2+", "gpl"),
        ("GPL-3.0-or-later", "gpl"),
        ("LGPL-2.1+", "lgpl"),
        ("CC-BY-SA-3.0", "cc-by-sa"),
        ("CC-BY-SA-3.0-us", "cc-by-sa"),
        ("CC0", "cc0"),
        ("CC0-1.0", "cc0"),
        ("BSD-3-clause", "bsd"),
        ("GPL-2+ with OpenSSL exception", "gpl"),
        ("Expat", "expat"),
    ],
)
def test_family(name, fam):
    assert family(name) == fam


@pytest.mark.parametrize(
    "expr,ok",
    [
        ("GPL-2+", True),
        ("CC-BY-4.0", True),
        ("CC-BY-NC-SA-3.0", False),
        ("CC-BY-ND-4.0", False),
        ("non-free", False),
        ("permissive", False),  # unknown short name: refused
        ("", False),
        ("GPL-2+ or CDDL", True),
        ("CC-BY-NC-3.0 or CC0", True),  # one allowed alternative is enough
        ("GPL-2+ and CC-BY-NC-3.0", False),  # "and" needs all
    ],
)
def test_allowed(expr, ok):
    assert allowed(expr) is ok


def test_copyleft_marks_only_copyleft_choices():
    assert copyleft("GPL-2+") and copyleft("CC-BY-SA-3.0")
    assert not copyleft("CC0-1.0") and not copyleft("GPL-2+ or Expat")


def test_dep5_policy_per_file_last_match_wins():
    files = [
        "usr/share/games/game/sounds/nc/dog.ogg",
        "usr/share/games/game/sounds/free/cat.ogg",
        "usr/share/games/game/extra.ogg",
        "usr/share/games/game/other/bird.ogg",
    ]
    pol = CopyrightPolicy(DEP5, files)
    nc, free, extra, other = (pol.decide(f) for f in files)
    assert not nc.keep and "NC" in nc.licence  # tied to its source folder through the tail
    assert free.keep and free.licence == "CC0-1.0" and not free.copyleft
    assert extra.keep and extra.licence == "CC0-1.0"
    assert other.keep and other.licence == "GPL-2+" and other.copyleft


def test_unmatchable_refused_sound_paragraph_refuses_everything():
    text = DEP5.replace("data/sounds/nc/*", "assets/sfx/*")  # nothing installed matches it
    pol = CopyrightPolicy(text, ["usr/share/game/sounds/dog.ogg"])
    d = pol.decide("usr/share/game/sounds/dog.ogg")
    assert not d.keep and "unmatched" in d.reason


def test_freeform_copyright():
    gpl = "This package is free software under the GNU General Public License version 2."
    assert CopyrightPolicy(gpl, ["a.ogg"]).decide("a.ogg").keep
    nc = gpl + " The sounds are licensed for non-commercial use only."
    assert not CopyrightPolicy(nc, ["a.ogg"]).decide("a.ogg").keep
    assert not CopyrightPolicy("All rights reserved.", ["a.ogg"]).decide("a.ogg").keep


def test_words_split_camel_case_digits_plurals_and_run_together_names():
    known = frozenset({"metal", "bang", "footstep", "door", "open", "glass", "break"})
    assert {"metal", "bang"} <= words("sounds/metalbang3.ogg", known)
    assert {"footstep", "door", "open"} <= words("a/DoorOpen_footsteps2.wav", known)
    assert "glass" in words("x/glasses.ogg", known) or "glasse" not in words("x/glasses.ogg", known)
    # a name that does not split completely into known words stays whole
    assert "metalxyz" in words("metalxyz.ogg", known)


def test_caption_map_most_specific_rule_wins_and_unknown_is_dropped():
    m = CaptionMap(
        [
            Rule.of("door", "a door"),
            Rule.of("door open|opening", "a door opening"),
            Rule.of("dog", "a dog"),
        ],
        veto=frozenset({"unused"}),
    )
    assert m.captions("sfx/door_open.ogg") == ("a door opening",)
    assert m.captions("sfx/door.ogg") == ("a door",)
    assert m.captions("sfx/menu_select.ogg") is None
    assert m.captions("sfx/unused/dog.ogg") is None
    assert m.captions("frozen-dog/sfx/door.ogg", ignore=frozenset({"dog"})) == ("a door",)


@pytest.mark.parametrize(
    "path,expected",
    [
        ("usr/share/games/x/sounds/default_break_glass.1.ogg", "glass breaking"),
        ("usr/share/games/x/sounds/gravel_footstep.2.ogg", "footsteps on gravel"),
        ("usr/share/wordwarvi/sounds/big_explosion.ogg", "a big explosion"),
        ("usr/share/sonic-pi/samples/drum_cymbal_open.flac", "a cymbal"),
        ("usr/share/lmms/samples/drums/kick01.ogg", "a kick drum"),
        ("usr/share/games/x/sfx/human-female-die.ogg", "a woman's dying scream"),
        ("usr/share/games/x/sfx/carhorn5.wav", "a car horn honking"),
        ("usr/share/games/x/sounds/birds1.ogg", "birds chirping"),
    ],
)
def test_curated_map_on_real_names(path, expected):
    caps = CAPTION_MAP.captions(path)
    assert caps is not None and caps[0] == expected and len(caps) >= 2


@pytest.mark.parametrize(
    "path", ["usr/share/sounds/Oxygen-Sys-App-Error.ogg", "usr/share/games/x/menu01.wav"]
)
def test_curated_map_drops_what_it_cannot_describe(path):
    assert CAPTION_MAP.captions(path) is None


def test_caption_file_speech_music_and_package_words():
    caps, group = H.caption_file("asterisk-core-sounds-fr-wav", "usr/share/x/vm-goodbye.wav")
    assert group == "speech:fr" and "French" in caps[0]
    caps, group = H.caption_file("ktuberling-data", "usr/share/ktuberling/sounds/de/hat.ogg")
    assert group == "speech:de" and "German" in caps[0]
    caps, group = H.caption_file("tuxpaint-stamps-default", "s/animals/cat_desc_ro.ogg")
    assert group == "speech:ro" and "Romanian" in caps[0]
    caps, group = H.caption_file("some-game-data", "usr/share/game/music/battle.ogg")
    assert group == "music" and caps[0] == "music"
    # "bubble" names the game, not the sound
    assert H.caption_file("frozen-bubble-data", "usr/share/frozen-bubble/snd/cancel.ogg")[0] is None


def test_pieces_cut_long_files_only():
    sr = 8000
    assert len(H.pieces(np.zeros(5 * sr), sr)) == 1
    long = H.pieces(np.zeros(100 * sr), sr)
    assert len(long) == H.MAX_PIECES
    assert all(len(p) == int(H.PIECE_S * sr) for _, p in long)


def _fake_package(cache, name, copyright_text, files):
    root = cache / "pkgs" / name
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text)
    for rel, wave in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, wave, 16000)
    origin = {"package": name, "version": "1.0", "url": "", "sha256": "x", "audio_files": 0}
    (root / "origin.json").write_text(json.dumps(origin))


def test_harvest_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    tone = (0.3 * np.sin(np.arange(16000) * 0.1)).astype(np.float32)
    noise = (0.2 * rng.standard_normal(16000)).astype(np.float32)
    _fake_package(
        tmp_path,
        "game-data",
        DEP5,
        {
            "usr/share/game/sounds/nc/dog_bark.ogg": noise,  # refused licence
            "usr/share/game/sounds/free/glass_break.wav": noise,
            "usr/share/game/sounds/free/copy_glass_break.wav": noise,  # duplicate
            "usr/share/game/sounds/free/menu.wav": tone,  # no caption
            "usr/share/game/sounds/free/thunder.wav": np.zeros(16000, np.float32),  # silent
            "usr/share/game/sounds/free/rain.wav": tone,
        },
    )
    simple = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: CC0-1.0\n"
    _fake_package(
        tmp_path, "other-data", simple, {"usr/share/other/sounds/birds.wav": tone[::-1].copy()}
    )
    cfg = H.HarvestConfig(cache=tmp_path)
    summary = H.harvest(cfg, (DebianSource("game-data"), DebianSource("other-data", heldout=True)))
    rows = H.read_harvest(tmp_path)
    caps = sorted(r["caption"] for r in rows)
    assert caps == ["birds chirping", "glass breaking", "rain falling"]
    by_pkg = summary["packages"]["game-data"]
    assert by_pkg["duplicate"] == 1 and by_pkg["no caption"] == 1 and by_pkg["silent"] == 1
    assert any(k.startswith("licence") for k in by_pkg)
    bird = next(r for r in rows if r["caption"] == "birds chirping")
    assert bird["split"] == "test" and bird["licence"] == "CC0-1.0" and not bird["copyleft"]
    assert all(r["package"] and r["member"] and r["version"] == "1.0" for r in rows)
    # deterministic: a rerun gives the same manifest
    first = (tmp_path / "manifest.jsonl").read_text()
    H.harvest(cfg, (DebianSource("game-data"), DebianSource("other-data", heldout=True)))
    assert (tmp_path / "manifest.jsonl").read_text() == first


def test_training_files_feed_the_training_record(tmp_path):
    from clapsearch.hashing import HASH_NAME
    from clapsearch.training_record import write_training_record
    from trainer.data_prep.evaluate_extra import overlap
    from trainer.data_prep.trained_on import training_files

    audio = tmp_path / "a"
    audio.mkdir()
    for k in range(3):
        sf.write(audio / f"{k}.wav", np.full(800, 0.1 * (k + 1), np.float32), 8000)
    manifest = tmp_path / "train.jsonl"
    rows = [{"path": f"a/{k}.wav", "caption": "x", "split": "train"} for k in range(2)]
    rows.append({"path": "a/0.wav", "caption": "y", "split": "train"})  # same file twice
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"data": {"train": [{"kind": "manifest", "root": "train.jsonl", "split": ""}]}}
    files = training_files(cfg, tmp_path)
    assert sorted(files) == sorted(str(audio / f"{k}.wav") for k in range(2))
    data = json.loads(write_training_record(tmp_path, files).read_text())
    assert data["hash"] == HASH_NAME and data["count"] == 2
    # a copy of a trained file under another name is recognised; an unseen file is not
    (tmp_path / "copy.wav").write_bytes((audio / "1.wav").read_bytes())
    got = overlap(tmp_path, [str(tmp_path / "copy.wav"), str(audio / "2.wav")])
    assert got == {"known": True, "trained": 1, "evaluated": 2}


def test_debian_records_split_and_cap(tmp_path):
    from trainer.data_prep.build_default_data import debian_records

    rows = [
        {
            "path": f"/x/g{k}.flac",
            "caption": "a guitar",
            "captions": ["a guitar"],
            "source": "debian:kit",
            "split": "train",
            "package": "kit",
            "member": f"g{k}",
            "piece": 0,
        }
        for k in range(200)
    ] + [
        {
            "path": f"/x/h{k}.flac",
            "caption": "a dog",
            "captions": ["a dog"],
            "source": "debian:held",
            "split": "test",
            "package": "held",
            "member": f"h{k}",
            "piece": 0,
        }
        for k in range(5)
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recs = debian_records(manifest, per_caption=40)
    splits = [r.split for r in recs]
    assert splits.count("train") == 40
    assert 0 < splits.count("val") < 30  # about 1 in 20 source files
    assert splits.count("test") == 5 and all(
        r.source == "debian:held" for r in recs if r.split == "test"
    )
    assert recs == debian_records(manifest, per_caption=40)  # deterministic
