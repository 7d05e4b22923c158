"""Download Debian packages and unpack only their sound files and copyright notice.

    python -m trainer.data_prep.debian_fetch [PACKAGE ...] [--cache /work/cache/debian-sounds]

Nothing is installed: `apt-get download` fetches the .deb into `<cache>/debs/`, and
`dpkg-deb --fsys-tarfile` streams its file system into Python's `tarfile`, which keeps only
members with an audio suffix plus `usr/share/doc/<pkg>/copyright`, under
`<cache>/pkgs/<pkg>/` (the package's own paths, so captions can read them). `origin.json`
beside them records package, version, archive URL and the .deb's SHA-256. A package already
unpacked (its `origin.json` exists) is skipped, so a rerun only fetches what is missing; the
.deb is deleted after unpacking unless `--keep-debs`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from trainer.data_prep.common import log

DEFAULT_CACHE = Path("/work/cache/debian-sounds")
AUDIO_SUFFIXES = frozenset({".ogg", ".oga", ".wav", ".flac", ".mp3", ".opus"})


@dataclass(frozen=True)
class Origin:
    """Where a package's files came from (written to `origin.json`)."""

    package: str
    version: str
    url: str
    sha256: str
    audio_files: int

    def to_json(self) -> dict:
        return dict(vars(self))


def package_dir(cache: Path, package: str) -> Path:
    return cache / "pkgs" / package


def read_origin(cache: Path, package: str) -> Origin | None:
    path = package_dir(cache, package) / "origin.json"
    if not path.is_file():
        return None
    return Origin(**json.loads(path.read_text()))


def wanted(member: str, package: str) -> bool:
    """Keep audio files and the package's copyright file (never links or devices)."""
    p = PurePosixPath(member.lstrip("./"))
    if p.suffix.lower() in AUDIO_SUFFIXES:
        return True
    return p.as_posix() == f"usr/share/doc/{package}/copyright"


def _safe_target(root: Path, member: str) -> Path | None:
    rel = PurePosixPath(member.lstrip("./"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        return None
    return root.joinpath(*rel.parts)


def unpack(deb: Path, package: str, dest: Path) -> int:
    """Stream `deb`'s data archive, writing the wanted regular files under `dest`; -> count of
    audio files. Symlinked files (e.g. a copyright file pointing into another package's doc
    folder) are skipped: a package without its own copyright file is dropped later."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    n_audio = 0
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                if not m.isreg() or not wanted(m.name, package):
                    continue
                target = _safe_target(dest, m.name)
                src = tar.extractfile(m)
                if target is None or src is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                n_audio += target.suffix.lower() in AUDIO_SUFFIXES
    finally:
        proc.stdout.close()
        rc = proc.wait()
    if rc != 0:
        raise RuntimeError(f"dpkg-deb failed on {deb.name} ({rc})")
    return n_audio


def _download(package: str, debs: Path) -> tuple[Path, str]:
    debs.mkdir(parents=True, exist_ok=True)
    uri = subprocess.run(
        ["apt-get", "download", "--print-uris", package], capture_output=True, text=True
    )
    url = uri.stdout.split()[0].strip("'") if uri.returncode == 0 and uri.stdout.strip() else ""
    proc = subprocess.run(
        ["apt-get", "download", package], cwd=debs, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"apt-get download {package} failed: {proc.stderr.strip()[:300]}")
    found = sorted(debs.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError(f"apt-get download {package} left no .deb in {debs}")
    return found[-1], url


def _field(deb: Path, name: str) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True)
    return out.stdout.strip()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(package: str, cache: Path = DEFAULT_CACHE, keep_deb: bool = False) -> Origin:
    """Download and unpack `package` unless already done; -> its `Origin`."""
    done = read_origin(cache, package)
    if done is not None:
        return done
    deb, url = _download(package, cache / "debs")
    final = package_dir(cache, package)
    tmp = final.with_name(final.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n_audio = unpack(deb, package, tmp)
    origin = Origin(package, _field(deb, "Version"), url, sha256(deb), n_audio)
    (tmp / "origin.json").write_text(json.dumps(origin.to_json(), indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if not keep_deb:
        deb.unlink()
    return origin


def main(argv: list[str] | None = None) -> None:
    from trainer.data_prep.debian_sources import PACKAGES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("packages", nargs="*", help="default: every package in debian_sources")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--keep-debs", action="store_true")
    a = p.parse_args(argv)
    for name in a.packages or [s.name for s in PACKAGES]:
        try:
            o = fetch(name, a.cache, a.keep_debs)
            log(f"{name} {o.version}: {o.audio_files} audio files")
        except RuntimeError as e:
            log(f"skipping {name}: {e}")


if __name__ == "__main__":
    main()
