"""The result of transcribing one recording, and its writers (MIDI, JSON, MusicXML, PDF).

Kept apart from the model code so results can be loaded, written and scored without JAX.
MusicXML and PDF go through `harmonynet_jax.score`; when that package is missing or fails, only
those formats fail (`ScoreOutputError`), MIDI and JSON never depend on it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonynet_jax.midi_out import write_midi
from harmonynet_jax.tokens import Note, Pedal

# What a folder given to the transcriber or the evaluator is searched for (a file named
# explicitly is tried whatever its suffix).
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif",
                  ".aiff", ".wma", ".webm", ".mka", ".mp4")


class ScoreOutputError(RuntimeError):
    """MusicXML/PDF could not be written (score package missing or failing)."""


@dataclass
class Transcription:
    """Notes (key presses; for the frame decoder, sounding durations) and sustain pedal spans
    of one recording, in seconds."""

    notes: list[Note]
    pedals: list[Pedal] = field(default_factory=list)
    duration: float = 0.0  # seconds of audio transcribed
    decoder: str = "tokens"
    model: str = ""  # where the weights came from
    source: str | None = None  # the input file, when there was one

    @property
    def score_durations(self) -> str:
        """What the note offsets mean to `score.write`: "sounding" for the frame decoder."""
        return "sounding" if self.decoder == "frames" else "played"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "duration": round(self.duration, 6),
            "model": self.model,
            "decoder": self.decoder,
            "notes": [{"onset": round(float(n.onset), 6), "offset": round(float(n.offset), 6),
                       "pitch": int(n.pitch), "velocity": int(n.velocity)} for n in self.notes],
            "pedals": [{"onset": round(float(p.onset), 6), "offset": round(float(p.offset), 6)}
                       for p in self.pedals],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcription:
        return cls(
            notes=[Note(float(n["onset"]), float(n["offset"]), int(n["pitch"]),
                        int(n["velocity"])) for n in d.get("notes", [])],
            pedals=[Pedal(float(p["onset"]), float(p["offset"])) for p in d.get("pedals", [])],
            duration=float(d.get("duration", 0.0)),
            decoder=str(d.get("decoder", "")),
            model=str(d.get("model", "")),
            source=d.get("source"),
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        """JSON with one note (or pedal span) per line: readable and diff-friendly."""
        d = self.as_dict()
        head = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in d.items()
                if k not in ("notes", "pedals")]

        def rows(items: list[dict]) -> str:
            return "[" + ",".join(f"\n  {json.dumps(x)}" for x in items) + (
                "\n ]" if items else "]")

        text = "{\n" + "\n".join(head) + f'\n "notes": {rows(d["notes"])},\n' \
            f' "pedals": {rows(d["pedals"])}\n}}\n'
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Transcription:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_midi(self, path: str | os.PathLike, *, title: str | None = None,
                tempo: float | None = None, time_signature: str | None = None,
                ticks_per_beat: int = 960, default_tempo: float = 120.0) -> Path:
        """Standard MIDI File with velocities and CC64 (no pedal from the frame decoder)."""
        return write_midi(path, self.notes, self.pedals, title=title,
                          tempo_bpm=tempo or default_tempo, ticks_per_beat=ticks_per_beat,
                          time_signature=parse_time_signature(time_signature))

    def to_score(self, musicxml_path: str | os.PathLike, pdf_path: str | os.PathLike | None = None,
                 **score_kw: Any) -> Any:
        """MusicXML (and PDF) in one analysis; returns the score package's ScoreInfo.

        The frame decoder's notes last as long as they sound (pedal included), so they are
        scored with `durations="sounding"` unless the caller says otherwise."""
        score_kw.setdefault("durations", self.score_durations)
        try:
            from harmonynet_jax import score
        except Exception as err:  # missing, or broken at import
            raise ScoreOutputError(f"score package unavailable ({type(err).__name__}: {err})"
                                   ) from err
        try:
            return score.write(self.notes, musicxml_path, pdf_path, pedals=self.pedals,
                               **score_kw)
        except Exception as err:
            raise ScoreOutputError(f"{type(err).__name__}: {err}") from err

    def to_musicxml(self, path: str | os.PathLike, **score_kw: Any) -> Any:
        """MusicXML score (title, composer, tempo, time_signature as in `score.write`)."""
        return self.to_score(path, None, **score_kw)

    def to_pdf(self, path: str | os.PathLike, *, musicxml_path: str | os.PathLike | None = None,
               **score_kw: Any) -> Any:
        """PDF score; the MusicXML it is engraved from goes to a temporary file unless
        `musicxml_path` is given."""
        if musicxml_path is not None:
            return self.to_score(musicxml_path, path, **score_kw)
        with tempfile.TemporaryDirectory(prefix="harmonynet-") as tmp:
            return self.to_score(Path(tmp) / "score.musicxml", path, **score_kw)


    def write(self, plan: dict[str, Path], *, title: str | None = None,
              composer: str | None = None, tempo: float | None = None,
              time_signature: str | None = None, engraver: str = "auto",
              ticks_per_beat: int = 960, default_tempo: float = 120.0
              ) -> tuple[list[Path], list[tuple[str, str]]]:
        """Writes each format of `plan` ({"midi" | "json" | "musicxml" | "pdf": path}) and
        returns (paths written, [(format, one-line error)]). MIDI and JSON come first and a
        score failure costs only MusicXML/PDF, so the CLI and the service keep what worked.
        Without a title, the score and the MIDI track are named after the input file."""
        if title is None and self.source:
            title = Path(self.source).stem.replace("_", " ")
        written: list[Path] = []
        errors: list[tuple[str, str]] = []
        if "midi" in plan:
            try:
                written.append(self.to_midi(plan["midi"], title=title, tempo=tempo,
                                            time_signature=time_signature,
                                            ticks_per_beat=ticks_per_beat,
                                            default_tempo=default_tempo))
            except (OSError, ValueError) as err:
                errors.append(("midi", str(err)))
        if "json" in plan:
            try:
                written.append(self.to_json(plan["json"]))
            except OSError as err:
                errors.append(("json", str(err)))
        score_formats = [f for f in ("musicxml", "pdf") if f in plan]
        if score_formats:
            kw = {"title": title, "composer": composer, "tempo": tempo,
                  "time_signature": time_signature, "engraver": engraver}
            try:
                if "musicxml" in plan:
                    self.to_score(plan["musicxml"], plan.get("pdf"), **kw)
                else:
                    self.to_pdf(plan["pdf"], **kw)
                written += [Path(plan[f]) for f in score_formats]
            except (ScoreOutputError, OSError) as err:
                errors += [(f, str(err)) for f in score_formats]
        return written, errors


def parse_time_signature(text: str | None) -> tuple[int, int] | None:
    """'3/4' -> (3, 4); the denominator must be a power of two (MIDI stores its log2)."""
    if text is None:
        return None
    try:
        num_s, den_s = text.split("/")
        num, den = int(num_s), int(den_s)
    except ValueError:
        raise ValueError(f"time signature must look like 3/4, not {text!r}") from None
    if not (1 <= num <= 64 and den in (1, 2, 4, 8, 16, 32, 64)):
        raise ValueError(f"time signature {text!r}: numerator 1..64, denominator a power of two")
    return num, den
