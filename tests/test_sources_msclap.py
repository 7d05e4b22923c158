"""MS-CLAP `.pth` files load directly and embed as msclap's own code does.

Random-weight models are built with msclap's own classes (tests/peers.py says what is
substituted and why), saved as msclap saves them (`{"model": state_dict}`), loaded by
`clapsearch` through `--model FILE` and compared with msclap's `CLAPWrapper` on the same
waveform (our decoder's output: msclap's torchaudio resampling and its concatenation of stereo
channels are the pipeline noise docs/checkpoints.md lists) and the same token ids.

Clips longer than the window: msclap takes one random crop; clapsearch embeds consecutive
windows and averages them. The reference is msclap's embedding of each of those windows,
averaged the same way. Texts longer than msclap's `text_len`: msclap does not truncate (and its
batching then fails); clapsearch truncates keeping GPT-2's appended end token, and the
reference is msclap's text encoder on clapsearch's token ids.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clapsearch.errors import ModelLoadError
from clapsearch.features import window_starts
from clapsearch.loading import load_embedder
from tests import peers
from tests.conftest import clotho_files, esc50_files, run_cli

SHORT_TEXTS = [
    "a dog",
    "Rain, falling on a tin roof -- loud; (very) loud!",
    "wow! a bell?! rings.",
    "Birds chirp while a car's engine idles",
]
LONG_TEXT = " ".join(
    f"sound number {i}, with birds, wind and a distant siren that fades away slowly"
    for i in range(12)
)


def _setup(version, peer_files):
    from transformers import AutoTokenizer

    clap, path = peer_files(f"msclap-{version}")
    hub_id = "gpt2" if version == "2023" else "bert-base-uncased"  # what msclap's yml names
    wrapper = peers.msclap_wrapper(clap, version, AutoTokenizer.from_pretrained(hub_id))
    ours = load_embedder(str(path), device="cpu", precision="fp32")
    return wrapper, ours, path


@pytest.fixture(scope="module")
def ms2022(peer_files, hub):
    return _setup("2022", peer_files)


@pytest.fixture(scope="module")
def ms2023(peer_files, hub):
    return _setup("2023", peer_files)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """ESC-50 (44.1 kHz mono, 5 s) as is, a 2 s cut at 16 kHz mono, the same clip as 44.1 kHz
    stereo, and a Clotho clip (15-30 s) as 48 kHz stereo with unequal channels."""
    import soundfile as sf

    from clapsearch.audio import load_audio

    folder = tmp_path_factory.mktemp("ms_audio")
    esc = esc50_files(1)[0]
    short16 = load_audio(str(esc), 16_000)[: 2 * 16_000]
    sf.write(folder / "short16k.wav", short16, 16_000)
    mono = load_audio(str(esc), 44_100)
    sf.write(folder / "stereo44k.wav", np.stack([mono, 0.5 * mono[::-1]], axis=1), 44_100)
    long48 = load_audio(str(clotho_files()[0]), 48_000)
    sf.write(folder / "long48k.wav", np.stack([long48, 0.3 * long48], axis=1), 48_000)
    return [esc, folder / "short16k.wav", folder / "stereo44k.wav", folder / "long48k.wav"]


def _msclap_audio(wrapper, wave: np.ndarray) -> np.ndarray:
    """msclap's embedding of one clip by its own padding (`load_audio_into_tensor`) and
    audio encoder, window by window for clips longer than its window (see module doc)."""
    window = int(wrapper.args.duration * wrapper.args.sampling_rate)
    vectors = []
    for start in window_starts(len(wave), window):
        key = f"w{len(wrapper.waves)}"
        wrapper.waves[key] = wave[start : start + window]
        batch = wrapper.preprocess_audio([key], resample=False)
        vectors.append(F.normalize(wrapper._get_audio_embeddings(batch), dim=-1)[0])
    return F.normalize(torch.stack(vectors).mean(0), dim=-1).numpy()


@pytest.mark.parametrize("version", ["2022", "2023"])
def test_audio_matches_msclap(version, request, audio_files):
    from clapsearch.audio import load_audio

    wrapper, ours, _ = request.getfixturevalue(f"ms{version}")
    assert ours.sample_rate == 44_100 and ours.window_s == {"2022": 5, "2023": 7}[version]
    waves = [load_audio(str(f), ours.sample_rate) for f in audio_files]
    assert len(waves[1]) < ours.audio_config.window_samples < len(waves[3])
    got = ours.embed_audio(waves)
    with torch.inference_mode():
        want = np.stack([_msclap_audio(wrapper, w) for w in waves])
    assert got.shape == (4, 32)
    peers.assert_parity(f"msclap-{version} audio", got, want)


@pytest.mark.parametrize("version", ["2022", "2023"])
def test_text_matches_msclap(version, request):
    wrapper, ours, _ = request.getfixturevalue(f"ms{version}")
    with torch.inference_mode():
        want = F.normalize(wrapper.get_text_embeddings(SHORT_TEXTS), dim=-1).numpy()
    peers.assert_parity(f"msclap-{version} text", ours.embed_text(SHORT_TEXTS), want)


@pytest.mark.parametrize("version", ["2022", "2023"])
def test_long_text_is_truncated_and_matches_msclap_on_the_same_ids(version, request):
    wrapper, ours, _ = request.getfixturevalue(f"ms{version}")
    limit = wrapper.args.text_len
    tokens = ours._tokenize([LONG_TEXT])
    ids = tokens["input_ids"][0].tolist()
    assert len(ids) == limit < ours.count_tokens(LONG_TEXT)
    full = wrapper.preprocess_text([LONG_TEXT])["input_ids"][0].tolist()  # msclap: no cut
    if version == "2023":  # the text is cut, GPT-2's appended " <|endoftext|>" is kept
        assert ids == full[: limit - 2] + full[-2:] and ids[-1] == 50256
    else:
        assert ids[:-1] == full[: limit - 1] and ids[-1] == full[-1]  # ... [SEP]
    batch = {k: tokens[k] for k in wrapper.token_keys if k in tokens}
    if "token_type_ids" in wrapper.token_keys:
        batch["token_type_ids"] = torch.zeros_like(tokens["input_ids"])
    with torch.inference_mode():
        want = F.normalize(wrapper.clap.caption_encoder(batch), dim=-1).numpy()
    peers.assert_parity(f"msclap-{version} long text", ours.embed_text([LONG_TEXT]), want)


def test_2023_pools_where_msclap_does_even_after_an_exclamation_mark(ms2023):
    """msclap pools GPT-2 at (ids != 0).sum() - 1 and pads with `!` = id 0: a `!` in the text
    moves the pooled position off the end token. clapsearch reproduces that; pooling the last
    real token instead would be a different model (the test shows it differs)."""
    wrapper, ours, _ = ms2023
    text = "wow! a bell"
    tokens = ours._tokenize([text])
    hidden = ours.model.text_encoder.hf_model(**tokens).last_hidden_state[0]
    ids = tokens["input_ids"][0]
    assert (ids == 0).sum() == 1 and ids[-1] == 50256
    quirk = hidden[int((ids != 0).sum()) - 1]
    end = hidden[len(ids) - 1]
    assert F.cosine_similarity(quirk, end, dim=0) < 0.999
    with torch.inference_mode():
        want = F.normalize(wrapper.get_text_embeddings([text]), dim=-1).numpy()
    peers.assert_parity("msclap-2023 text with !", ours.embed_text([text]), want)


def test_identity_and_front_end(ms2022, ms2023):
    assert ms2022[1].identity.startswith("msclap:2022@")
    assert ms2023[1].identity.startswith("msclap:2023@")
    assert ms2023[1].audio_config.filterbank_rate == 32_000
    assert ms2022[1].audio_config.filterbank_rate == 0


def test_recognised_by_content_not_by_name(ms2023, tmp_path):
    """A renamed copy loads with the same identity (an index accepts it); a file with msclap's
    name that holds something else is refused in one sentence."""
    import shutil

    _, ours, path = ms2023
    renamed = tmp_path / "weights.bin"
    shutil.copy(path, renamed)
    copy = load_embedder(str(renamed), device="cpu", precision="fp32")
    assert copy.identity == ours.identity
    np.testing.assert_allclose(copy.embed_text(["a dog"]), ours.embed_text(["a dog"]), atol=1e-6)
    impostor = tmp_path / "CLAP_weights_2023.pth"
    torch.save({"model": {"weight": torch.zeros(3)}}, str(impostor))
    with pytest.raises(ModelLoadError, match="is not a model clapsearch can load .*MS-CLAP"):
        load_embedder(str(impostor), device="cpu", precision="fp32")


def test_clapcap_is_refused_in_one_sentence(tmp_path, capsys):
    """The captioning file has an audio encoder under `clap.` and GPT-2 under `gpt.`, no text
    encoder to search with."""
    path = tmp_path / "clapcap_weights_2023.pth"
    state = {
        "clap.base.htsat.patch_embed.proj.weight": torch.zeros(2),
        "clap.projection.linear1.weight": torch.zeros(2),
        "gpt.transformer.wte.weight": torch.zeros(2),
        "clap_project.linear.weight": torch.zeros(2),
    }
    torch.save({"model": state}, str(path))
    code, out, err = run_cli(["embed", "--text", "a dog", "--json", "--model", str(path)], capsys)
    assert code == 1 and out == ""
    assert "captioning model (clapcap)" in err and len(err.strip().splitlines()) == 1


def test_missing_tokenizer_is_one_sentence(ms2022, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError, match="bert-base-uncased tokenizer it needs is not"):
        load_embedder(str(ms2022[2]), device="cpu", precision="fp32")


def test_file_that_leaves_a_tensor_unset_is_refused(ms2022, tmp_path):
    state = torch.load(str(ms2022[2]), weights_only=True)["model"]
    del state["caption_encoder.projection.layer_norm.weight"]
    path = tmp_path / "partial.pth"
    torch.save({"model": state}, str(path))
    with pytest.raises(ModelLoadError, match="1 tensors missing"):
        load_embedder(str(path), device="cpu", precision="fp32")


def test_index_and_query_with_the_pth_file(ms2023, tmp_path, capsys):
    """`clapsearch index ./sounds --model CLAP_weights_2023.pth`, then a text query: the index
    remembers the file and its identity."""
    import json
    import shutil

    _, ours, path = ms2023
    lib = tmp_path / "sounds"
    lib.mkdir()
    for f in esc50_files(3):
        shutil.copy(f, lib / f.name)
    idx = tmp_path / "idx"
    args = ["--index", str(idx), "--json"]
    code, out, err = run_cli(
        ["index", str(lib), "--model", str(path), "--workers", "0", *args], capsys
    )
    assert code == 0, err
    assert json.loads(out)["indexed"] == 3
    code, out, err = run_cli(["query", "a dog barks", "-k", "2", *args], capsys)
    assert code == 0, err
    hits = json.loads(out)
    hits = hits["results"] if isinstance(hits, dict) else hits
    assert len(hits) == 2
    code, out, _ = run_cli(["status", *args], capsys)
    assert json.loads(out)["model"] == ours.identity
    from clapsearch.index.reader import IndexReader

    reader = IndexReader.open(idx)
    try:  # the index records the model's front end and text rules, not only its name
        recorded = reader.meta.model_identity
    finally:
        reader.close()
    assert recorded.name == str(path) and recorded.audio.filterbank_rate == 32_000
    assert (recorded.text.pooling, recorded.text.suffix) == ("msclap_gpt2", " <|endoftext|>")
    assert recorded.text.tokenizer == "openai-community/gpt2" and recorded.text.max_tokens == 77
