"""Speech from espeak-ng: men and women speaking a dozen languages, whispers, robotic voices,
two-person conversations and crowds.

espeak-ng is a formant synthesiser, so its voices sound synthetic; captions describe what a
listener hears ("a woman speaking French") and one of them says it is a synthetic voice.
Needs `espeak-ng` (Debian).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.data_prep.common import (
    SAMPLE_RATE,
    fit_length,
    read_mono,
    require_tools,
    run_tool,
    set_level,
    write_clip,
)

# language code -> (name, sentences)
LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "en": (
        "English",
        (
            "Good morning everyone, thank you for coming today.",
            "The train to the city leaves at half past nine.",
            "Please remember to close the window before you leave.",
            "I think we should meet again next week to talk about it.",
            "Hello, can you hear me? The connection is not very good.",
            "Turn left at the next corner and walk straight ahead.",
        ),
    ),
    "de": (
        "German",
        (
            "Guten Morgen, wie geht es Ihnen heute?",
            "Der Zug nach Berlin hat leider zehn Minuten Verspaetung.",
            "Wir treffen uns morgen um acht Uhr vor dem Bahnhof.",
        ),
    ),
    "fr": (
        "French",
        (
            "Bonjour a tous, merci d'etre venus aujourd'hui.",
            "Le musee ouvre ses portes a dix heures du matin.",
            "Est-ce que vous pouvez parler un peu plus lentement?",
        ),
    ),
    "es": (
        "Spanish",
        (
            "Buenos dias, me gustaria reservar una mesa para dos.",
            "El autobus llega a la plaza en cinco minutos.",
            "Hace mucho calor hoy, vamos a la playa.",
        ),
    ),
    "it": (
        "Italian",
        (
            "Buongiorno, vorrei un caffe e un cornetto, per favore.",
            "Il treno per Roma parte dal binario tre.",
            "Domani andiamo al mare con tutta la famiglia.",
        ),
    ),
    "pt": (
        "Portuguese",
        (
            "Bom dia, onde fica a estacao de comboios?",
            "Hoje o tempo esta muito bonito em Lisboa.",
            "Obrigado pela ajuda, ate amanha.",
        ),
    ),
    "nl": (
        "Dutch",
        (
            "Goedemorgen, hoe gaat het met je vandaag?",
            "De fiets staat achter het huis bij de schuur.",
        ),
    ),
    "pl": (
        "Polish",
        (
            "Dzien dobry, gdzie jest najblizszy przystanek autobusowy?",
            "Jutro bedzie padac deszcz przez caly dzien.",
        ),
    ),
    "ru": (
        "Russian",
        (
            "Доброе утро, как у вас дела сегодня?",
            "Поезд в Москву отправляется через десять минут.",
        ),
    ),
    "cmn": (
        "Chinese",
        (
            "你好，今天天气很好，我们去公园散步吧。",
            "请问火车站怎么走？",
        ),
    ),
    "sv": (
        "Swedish",
        (
            "God morgon, hur mar du idag?",
            "Vi ses pa stationen klockan fem.",
        ),
    ),
    "tr": (
        "Turkish",
        (
            "Gunaydin, bugun hava cok guzel.",
            "Otobus durağı nerede acaba?",
        ),
    ),
}
MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
FEMALE = ("f1", "f2", "f3", "f4", "f5")
ROBOT = ("robosoft", "robosoft3", "UniRobot", "Half-LifeAnnouncementSystem")


@dataclass(frozen=True)
class Utterance:
    lang: str
    variant: str
    text: str
    wpm: int
    pitch: int
    start_s: float = 0.0
    gain: float = 1.0


@dataclass(frozen=True)
class SpeechSpec:
    key: str
    utterances: tuple[Utterance, ...]  # mixed at their start times
    captions: tuple[str, ...]
    rms_db: float

    def render(self, out_path: Path) -> None:
        mix = np.zeros(0, dtype=np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "x.wav"
            for u in self.utterances:
                run_tool(
                    [
                        "espeak-ng",
                        "-v",
                        f"{u.lang}+{u.variant}",
                        "-s",
                        str(u.wpm),
                        "-p",
                        str(u.pitch),
                        "-w",
                        str(wav),
                        u.text,
                    ]
                )
                y = read_mono(wav) * u.gain
                at = int(u.start_s * SAMPLE_RATE)
                if len(mix) < at + len(y):
                    mix = np.pad(mix, (0, at + len(y) - len(mix)))
                mix[at : at + len(y)] += y
        write_clip(out_path, set_level(fit_length(mix), self.rms_db))


def check() -> None:
    require_tools("espeak-ng")


def _text(rng: random.Random, lang: str, n: int = 3) -> str:
    sentences = list(LANGUAGES[lang][1])
    rng.shuffle(sentences)
    return " ".join((sentences * n)[:n])


def _speaker(rng: random.Random, female: bool) -> tuple[str, int]:
    return rng.choice(FEMALE if female else MALE), rng.randint(35, 75)


def _speak(rng: random.Random) -> tuple[tuple[Utterance, ...], tuple[str, ...]]:
    lang = "en" if rng.random() < 0.35 else rng.choice(sorted(LANGUAGES))
    female = rng.random() < 0.5
    variant, pitch = _speaker(rng, female)
    wpm = rng.choice((120, 150, 175, 210))
    who, adj = ("a woman", "female") if female else ("a man", "male")
    name = LANGUAGES[lang][0]
    caps = (
        f"{who} speaking",
        f"{who} speaking {name}",
        f"a {adj} voice talking in {name}",
        f"speech in {name}",
        f"a synthetic {adj} voice reading a text",
    )
    if wpm >= 210:
        caps += (f"{who} talking fast",)
    elif wpm <= 120:
        caps += (f"{who} speaking slowly",)
    return (Utterance(lang, variant, _text(rng, lang), wpm, pitch),), caps


def _whisper(rng: random.Random):
    female = rng.random() < 0.5
    lang = "en" if rng.random() < 0.6 else rng.choice(sorted(LANGUAGES))
    utt = Utterance(lang, "whisperf" if female else "whisper", _text(rng, lang), 140, 50)
    who = "a woman" if female else "a man"
    return (utt,), (
        f"{who} whispering",
        "someone whispering",
        "whispered speech",
        f"quiet whispering in {LANGUAGES[lang][0]}",
    )


def _robot(rng: random.Random):
    utt = Utterance("en", rng.choice(ROBOT), _text(rng, "en"), 150, 50)
    return (utt,), (
        "a robotic voice speaking",
        "a computer voice talking",
        "robot speech",
        "an electronic synthesized voice",
    )


def _conversation(rng: random.Random):
    lang = "en" if rng.random() < 0.6 else rng.choice(sorted(LANGUAGES))
    sexes = rng.choice(((False, True), (True, False), (False, False), (True, True)))
    utts, t = [], 0.0
    for turn in range(4):
        variant, pitch = _speaker(
            random.Random(f"{sexes[turn % 2]}{rng.random()}"), sexes[turn % 2]
        )
        text = rng.choice(LANGUAGES[lang][1])
        utts.append(Utterance(lang, variant, text, 170, pitch, start_s=t))
        t += rng.uniform(1.3, 2.0)
    pair = {
        (False, True): "a man and a woman",
        (True, False): "a woman and a man",
        (False, False): "two men",
        (True, True): "two women",
    }[sexes]
    return tuple(utts), (
        f"{pair} talking",
        "two people having a conversation",
        f"{pair} having a conversation in {LANGUAGES[lang][0]}",
        "people talking",
    )


def _crowd(rng: random.Random):
    utts = []
    for _ in range(rng.randint(5, 8)):
        lang = rng.choice(sorted(LANGUAGES))
        variant, pitch = _speaker(rng, rng.random() < 0.5)
        utts.append(
            Utterance(
                lang,
                variant,
                _text(rng, lang, 2),
                170,
                pitch,
                start_s=rng.uniform(0, 1.5),
                gain=rng.uniform(0.3, 1.0),
            )
        )
    return tuple(utts), (
        "a crowd of people talking",
        "many people chattering",
        "the babble of many voices",
        "people talking at the same time",
    )


GENERATORS = (
    (_speak, 0.55),
    (_whisper, 0.12),
    (_robot, 0.08),
    (_conversation, 0.13),
    (_crowd, 0.12),
)


def specs(seed: int, count: int) -> list[SpeechSpec]:
    rng = random.Random(f"speech:{seed}")
    funcs, weights = zip(*GENERATORS, strict=True)
    out = []
    for i in range(count):
        make = rng.choices(funcs, weights)[0]
        utts, caps = make(rng)
        out.append(SpeechSpec(f"speech{i:04d}", utts, caps, rng.uniform(-26.0, -16.0)))
    return out
