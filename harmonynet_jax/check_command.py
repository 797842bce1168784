"""`harmonynet check`: every dependency, engraver, ffmpeg and the JAX backend with versions,
so a broken install is diagnosed in one command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harmonynet_jax.cli import EXIT_FAILED, EXIT_OK


def _first_line(cmd: list[str]) -> str:
    import subprocess

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # MuseScore without a display
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"not runnable ({type(err).__name__})"
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return text[0].strip() if text else f"exit status {done.returncode}"


def _declared_dependencies() -> tuple[list[str], dict[str, list[str]]]:
    """(required, {extra: names}) distribution names, from the repository's pyproject.toml
    when running from a checkout (it may be newer than the install), else the metadata."""
    import re
    import tomllib
    from importlib import metadata

    def name(req: str) -> str:
        return re.match(r"[A-Za-z0-9_.\-]+", req).group(0)

    def applies(req: str, extra: str) -> bool:
        """False for requirements whose environment marker excludes this machine."""
        try:
            from packaging.requirements import Requirement
        except ImportError:
            return True
        marker = Requirement(req).marker
        return marker is None or marker.evaluate({"extra": extra})

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        extras = {extra: list(dict.fromkeys(name(r) for r in reqs if applies(r, extra)))
                  for extra, reqs in project.get("optional-dependencies", {}).items()}
        return [name(r) for r in project["dependencies"] if applies(r, "")], extras
    reqs = metadata.requires("harmonynet-jax") or []
    extras: dict[str, list[str]] = {}
    for r in reqs:
        found = re.search(r"extra\s*==\s*['\"]([^'\"]+)", r)
        if found:
            extras.setdefault(found.group(1), []).append(name(r))
    return [name(r) for r in reqs if "extra ==" not in r], extras


def run_check() -> int:
    """Prints every dependency with its version; 1 when something required is missing."""
    import platform
    import shutil
    from importlib import metadata

    problems: list[str] = []

    def row(label: str, value: str) -> None:
        print(f"  {label:<22} {value}")

    print("HarmonyNet-JAX")
    row("python", f"{platform.python_version()} ({sys.executable})")
    try:
        row("harmonynet-jax", metadata.version("harmonynet-jax"))
    except metadata.PackageNotFoundError:
        row("harmonynet-jax", "not installed as a distribution (running from source)")
    try:
        from harmonynet_jax.tokens import VOCAB

        row("Rust loader", f"ok (vocabulary {VOCAB.size} tokens)")
    except Exception as err:
        problems.append("Rust loader")
        row("Rust loader", f"BROKEN: {err} (build it: pip install -e .)")
    required, extras = _declared_dependencies()
    groups = [("dependencies", required, True)]
    groups += [(f"optional [{extra}]", names, False) for extra, names in extras.items()]
    for title, names, needed in groups:
        print(title)
        for dist in names:
            try:
                row(dist, metadata.version(dist))
            except metadata.PackageNotFoundError:
                row(dist, "MISSING" if needed else "not installed")
                if needed:
                    problems.append(dist)
    print("ffmpeg")
    try:
        from harmonynet_jax.ffmpeg import ffmpeg_path

        path = ffmpeg_path()
        row("path", path)
        row("version", _first_line([path, "-version"]))
    except Exception as err:
        problems.append("ffmpeg")
        row("path", f"MISSING: {err}")
    print("engravers (PDF)")
    try:
        import verovio

        row("verovio", f"{verovio.toolkit().getVersion()} (Python, the default)")
    except Exception as err:
        row("verovio", f"unavailable: {err}")
    for dist in ("cairosvg", "pypdf"):  # verovio's SVG pages -> one PDF
        try:
            row(f"  {dist}", metadata.version(dist))
        except metadata.PackageNotFoundError:
            row(f"  {dist}", "MISSING (verovio PDFs need it)")
    lilypond = shutil.which("lilypond")
    row("lilypond", f"{_first_line([lilypond, '--version'])} ({lilypond})" if lilypond
        else "not found")
    xml2ly = shutil.which("musicxml2ly")
    row("musicxml2ly", xml2ly or "not found (LilyPond needs it for MusicXML)")
    musescore = next((shutil.which(b) for b in ("mscore", "musescore", "mscore4portable",
                                                 "musescore4", "mscore3") if shutil.which(b)),
                     None)
    row("musescore", f"{_first_line([musescore, '--version'])} ({musescore})" if musescore
        else "not found")
    print("JAX")
    try:
        import jax

        row("backend", jax.default_backend())
        row("devices", ", ".join(str(d) for d in jax.devices()))
    except Exception as err:
        problems.append("jax")
        row("backend", f"BROKEN: {err}")
    print("model")
    from harmonynet_jax.inference import bundled_model_path

    bundled = bundled_model_path()
    if bundled.is_file():
        from harmonynet_jax.weights import read_header

        try:
            info = read_header(bundled).get("info", {})
            row("bundled", f"{bundled} {info}" if info else str(bundled))
        except Exception as err:
            row("bundled", f"{bundled} unreadable: {err}")
    else:
        row("bundled", f"not trained yet ({bundled} missing): transcribe needs --checkpoint")
    if problems:
        print(f"missing or broken: {', '.join(problems)}")
        return EXIT_FAILED
    print("all required dependencies present")
    return EXIT_OK
