"""The `harmonynet` command line for real: transcribe (formats, batches with bad files, exit
codes), evaluate (MAESTRO split and folder pairs, JSON, plot, estimate == reference), check, and
the console script / transcribe.py as separate processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pretty_midi
import pytest

from harmonynet_jax import cli
from harmonynet_jax.config import ModelConfig
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.weights import save_weights

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "fixture_maestro"
PIECE = FIXTURE / "2018" / "fixture_01.flac"
BATCH = "4"  # as in test_inference, so compiled functions are shared within one pytest run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    model = HarmonyNet(ModelConfig.preset("tiny"), key=jax.random.key(0))
    return save_weights(tmp_path_factory.mktemp("ckpt") / "tiny.eqx", model, dtype="float32")


@pytest.fixture(autouse=True)
def _no_compile_cache(monkeypatch) -> None:
    monkeypatch.setenv("HARMONYNET_JAX_CACHE", "off")  # tests leave the user's cache alone


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_transcribe_batch_keeps_going_past_bad_files(checkpoint, tmp_path, capsys) -> None:
    (tmp_path / "text.mp3").write_text("hello")
    code, out, err = run(capsys, "transcribe", PIECE, tmp_path / "text.mp3",
                         tmp_path / "missing.wav", "--out-dir", tmp_path / "out", "--format",
                         "midi,json", "--checkpoint", checkpoint, "--batch-size", BATCH,
                         "--no-progress", "--title", "Study")
    assert code == cli.EXIT_FAILED
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert any("text.mp3 as audio" in line for line in lines)
    assert any("not found" in line and "missing.wav" in line for line in lines)
    assert "transcribed 1 of 3 file(s); failed:" in lines[-1]
    assert "text.mp3" in lines[-1] and "missing.wav" in lines[-1]
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "fixture_01.mid"))
    doc = json.loads((tmp_path / "out" / "fixture_01.json").read_text())
    assert doc["decoder"] == "tokens" and doc["model"] == str(checkpoint)
    assert len(doc["notes"]) == sum(len(i.notes) for i in midi.instruments) > 0
    assert "fixture_01.mid" in out and not (tmp_path / "out" / "text.mid").exists()


def test_transcribe_folder_frames_decoder_and_score_formats(checkpoint, tmp_path,
                                                            capsys) -> None:
    folder = tmp_path / "in" / "sub"
    folder.mkdir(parents=True)
    shutil.copy(PIECE, folder / "a.flac")
    subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "1.5", str(folder / "quiet.wav")], check=True)
    code, out, err = run(capsys, "transcribe", tmp_path / "in", "--out-dir", tmp_path / "out",
                         "--format", "json,midi,musicxml", "--decoder", "frames",
                         "--checkpoint", checkpoint, "--batch-size", BATCH, "--no-progress",
                         "--tempo", "90", "--time-sig", "3/4")
    assert code == cli.EXIT_OK, err
    for stem in ("a", "quiet"):
        for ext in (".mid", ".json", ".musicxml"):
            assert (tmp_path / "out" / "sub" / (stem + ext)).is_file()
    quiet = json.loads((tmp_path / "out" / "sub" / "quiet.json").read_text())
    assert quiet["notes"] == [] and quiet["decoder"] == "frames"
    assert json.loads((tmp_path / "out" / "sub" / "a.json").read_text())["pedals"] == []


def test_a_failing_score_format_costs_only_that_format(checkpoint, tmp_path, capsys) -> None:
    """MuseScore is not installed here: the PDF fails with one line, MIDI and JSON stay."""
    if shutil.which("mscore") or shutil.which("musescore"):
        pytest.skip("MuseScore is installed; this needs a missing engraver")
    code, out, err = run(capsys, "transcribe", PIECE, "--out-dir", tmp_path, "--format",
                         "midi,json,pdf", "--engraver", "musescore", "--checkpoint", checkpoint,
                         "--batch-size", BATCH, "--no-progress")
    assert code == cli.EXIT_FAILED and "Traceback" not in err
    assert "pdf not written" in err and "MuseScore is not installed" in err
    assert (tmp_path / "fixture_01.mid").is_file() and (tmp_path / "fixture_01.json").is_file()
    assert not (tmp_path / "fixture_01.pdf").exists()
    assert "fixture_01.mid" in out


def test_single_output_path_and_usage_errors(checkpoint, tmp_path, capsys) -> None:
    code, _, err = run(capsys, "transcribe", PIECE, "-o", tmp_path / "song.mid", "--format",
                       "midi,json", "--checkpoint", checkpoint, "--batch-size", BATCH,
                       "--no-progress")
    assert code == cli.EXIT_OK, err
    assert (tmp_path / "song.mid").is_file() and (tmp_path / "song.json").is_file()
    code, _, err = run(capsys, "transcribe", PIECE, PIECE, "-o", tmp_path / "x.mid")
    assert code == cli.EXIT_USAGE and "one input" in err
    twin = tmp_path / "twin"
    twin.mkdir()
    shutil.copy(PIECE, twin / "fixture_01.wav")
    code, _, err = run(capsys, "transcribe", PIECE, twin / "fixture_01.wav", "--out-dir",
                       tmp_path / "o")
    assert code == cli.EXIT_USAGE and "would both write" in err
    for bad in (["--format", "midi,wav"], ["--time-sig", "3/5"], ["--batch-size", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["transcribe", str(PIECE), *bad])
        assert exit_info.value.code == cli.EXIT_USAGE
    capsys.readouterr()


def test_no_model_means_exit_3_not_garbage(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("HARMONYNET_MODEL", str(tmp_path / "harmonynet.eqx"))
    code, _, err = run(capsys, "transcribe", PIECE, "--out-dir", tmp_path, "--no-progress")
    assert code == cli.EXIT_MODEL
    assert err.strip().startswith("error: no trained model is bundled yet")
    assert not list(tmp_path.glob("*.mid"))
    code, _, err = run(capsys, "transcribe", PIECE, "--checkpoint", tmp_path / "nope.eqx",
                       "--out-dir", tmp_path)
    assert code == cli.EXIT_MODEL and "checkpoint not found" in err


def test_evaluate_maestro_split_both_decoders_json_and_plot(checkpoint, tmp_path,
                                                            capsys) -> None:
    code, out, err = run(capsys, "evaluate", "--data", FIXTURE, "--split", "test",
                         "--checkpoint", checkpoint, "--decoder", "tokens,frames",
                         "--batch-size", BATCH, "--json", tmp_path / "s.json", "--plot",
                         tmp_path / "roll.png", "--no-progress")
    assert code == cli.EXIT_OK, err
    assert "sustain pedal" in out and "decoder: tokens" in out and "decoder: frames" in out
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {r["decoder"] for r in doc["pieces"]} == {"tokens", "frames"}
    assert {r["piece"] for r in doc["pieces"]} == {"2019/fixture_06"}
    for row in doc["pieces"]:
        assert 0.0 <= row["onset_f1"] <= 1.0 and 0.0 <= row["frame_f1"] <= 1.0
    assert set(doc["mean"]) == {"tokens", "frames"}
    assert (tmp_path / "roll.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_estimate_equal_to_reference_scores_one(tmp_path, capsys) -> None:
    data, est = tmp_path / "pairs", tmp_path / "est"
    data.mkdir()
    est.mkdir()
    for stem, audio in (("fixture_01", "2018/fixture_01.flac"),
                        ("fixture_05", "2019/fixture_05.mp3")):
        shutil.copy(FIXTURE / audio, data / (stem + Path(audio).suffix))
        shutil.copy(FIXTURE / audio.replace(Path(audio).suffix, ".midi"), data / f"{stem}.mid")
        shutil.copy(data / f"{stem}.mid", est / f"{stem}.mid")
    code, out, err = run(capsys, "evaluate", "--data", data, "--estimates", est, "--json",
                         tmp_path / "s.json")
    assert code == cli.EXIT_OK, err
    mean = json.loads((tmp_path / "s.json").read_text())["mean"]["midi"]
    for key in ("onset_f1", "onset_offset_f1", "onset_offset_velocity_f1", "frame_f1"):
        assert mean[key] == pytest.approx(1.0), key
    (est / "fixture_05.mid").unlink()
    code, _, err = run(capsys, "evaluate", "--data", data, "--estimates", est)
    assert code == cli.EXIT_FAILED and "fixture_05" in err and "Traceback" not in err
    code, _, err = run(capsys, "evaluate", "--data", tmp_path / "est")
    assert code == cli.EXIT_USAGE and "no audio + same-stem MIDI pairs" in err


def test_check_reports_dependencies_ffmpeg_engravers_and_jax(capsys) -> None:
    code, out, _ = run(capsys, "check")
    assert code == cli.EXIT_OK
    for word in ("jax", "mir_eval", "ffmpeg", "version", "verovio", "lilypond", "musescore",
                 "backend", "cpu", "bundled"):
        assert word in out, word


def test_console_script_and_transcribe_py_exit_codes(tmp_path) -> None:
    """Separate processes: the installed `harmonynet` script and the repository's
    transcribe.py report a missing file in one line, no traceback, exit 1."""
    env = {**os.environ, "HARMONYNET_JAX_CACHE": "off"}
    script = shutil.which("harmonynet") or pytest.skip("console script not installed")
    for cmd in ([script, "transcribe"], [sys.executable, str(ROOT / "transcribe.py")]):
        done = subprocess.run([*cmd, str(tmp_path / "missing.wav")], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == cli.EXIT_FAILED, done.stderr
        assert "Traceback" not in done.stderr
        assert f"not found: {tmp_path / 'missing.wav'}" in done.stderr


def _ffmpeg() -> str:
    from harmonynet_jax.ffmpeg import ffmpeg_path

    return ffmpeg_path()
