"""Whole-recording inference with a real (tiny, random-weight) model on real rendered audio:
segment tiling, joining segments by their ties and frames end to end, the Python API, the
MIDI / JSON writers, any rate and channel count, empty and silent input, and the metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pretty_midi
import pytest

from harmonynet_jax import evaluate, inference, tokens
from harmonynet_jax.config import InferenceConfig, ModelConfig
from harmonynet_jax.ffmpeg import ffmpeg_path
from harmonynet_jax.frames import FrameDecoding, frames_to_notes
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB, Note, Pedal
from harmonynet_jax.transcription import Transcription
from harmonynet_jax.weights import save_weights

FIXTURE = Path(__file__).parent / "data" / "fixture_maestro"
PIECE = FIXTURE / "2018" / "fixture_01.flac"  # 4.75 s, 44.1 kHz stereo FLAC with pedal
BATCH = 4  # one batch size throughout, so each decoder set compiles once


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny random-weight model saved the way real weights are (float32 arrays: see
    test_float16_weights_load for the float16 path)."""
    model = HarmonyNet(ModelConfig.preset("tiny"), key=jax.random.key(0))
    path = tmp_path_factory.mktemp("model") / "tiny.eqx"
    return save_weights(path, model, dtype="float32", info={"note": "random weights, tests"})


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    model, origin = inference.load_model(tiny_checkpoint)
    assert origin == str(tiny_checkpoint)
    return model


@pytest.fixture(scope="session")
def variants(tmp_path_factory) -> dict[str, Path]:
    """The piece as 44.1 kHz stereo WAV and 8 kHz mono MP3, made with the ffmpeg binary."""
    out = tmp_path_factory.mktemp("variants")
    made = {}
    for name, args in {"stereo44k.wav": ["-ac", "2", "-ar", "44100"],
                       "mono8k.mp3": ["-ac", "1", "-ar", "8000"]}.items():
        subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-i", str(PIECE), *args,
                        str(out / name)], check=True)
        made[name] = out / name
    return made


def midi_performance(path: Path) -> tuple[list[Note], list[Pedal]]:
    """Notes and CC64 spans as pretty_midi (an independent MIDI reader) sees them."""
    midi = pretty_midi.PrettyMIDI(str(path))
    notes = sorted(Note(n.start, n.end, n.pitch, n.velocity)
                   for inst in midi.instruments for n in inst.notes)
    pedals, down = [], None
    for cc in sorted((c.time, c.value) for inst in midi.instruments
                     for c in inst.control_changes if c.number == 64):
        if cc[1] >= 64 and down is None:
            down = cc[0]
        elif cc[1] < 64 and down is not None:
            pedals.append(Pedal(down, cc[0]))
            down = None
    return notes, pedals


def assert_same_notes(got, want, tol=1e-3) -> None:
    got, want = sorted(got), sorted(want)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[2:] == w[2:], (g, w)
        assert abs(g[0] - w[0]) < tol and abs(g[1] - w[1]) < tol, (g, w)


# --- tiling and joining ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 7 * 1000 + 123])
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_chunks_tile_the_recording_without_gaps(n, batch) -> None:
    seg = 1000
    audio = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    parts, firsts, shapes = [], [], set()
    for chunk in inference.chunks(audio, seg, batch):
        shapes.add(chunk.audio.shape)
        firsts.append(chunk.first)
        for row in range(chunk.audio.shape[0]):
            valid = int(chunk.valid[row])
            assert not chunk.audio[row, valid:].any()  # padding is silence
            if row < chunk.count:
                assert valid > 0
                parts.append(chunk.audio[row, :valid])
            else:
                assert valid == 0
    assert np.array_equal(np.concatenate(parts), audio)  # every sample once, in order
    count = -(-n // seg)
    assert sum(len(p) for p in parts) == n and len(parts) == count
    assert firsts == list(range(0, count, next(iter(shapes))[0]))
    assert len(shapes) == 1  # one compiled shape per file


@pytest.mark.parametrize("n", [1, 1000, 1001, 1600, 7 * 1000 + 123])
def test_overlapping_chunks_keep_middles_that_tile_the_recording(n) -> None:
    seg, margin, batch = 1000, 200, 3
    stride = seg - 2 * margin
    audio = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    count = inference.segment_count(n, seg, margin)
    kept, rows_seen = [], 0
    for chunk in inference.chunks(audio, seg, batch, margin):
        for row in range(chunk.count):
            i = chunk.first + row
            start = i * stride
            want = np.zeros(seg, np.float32)
            piece = audio[start: start + seg]
            want[: len(piece)] = piece
            assert np.array_equal(chunk.audio[row], want)
            assert chunk.valid[row] == len(piece) > 0
            lo = 0 if i == 0 else margin
            hi = seg if i == count - 1 else seg - margin
            kept.append(want[lo:hi])
            rows_seen += 1
        assert not chunk.valid[chunk.count:].any()
    assert rows_seen == count
    joined = np.concatenate(kept)
    assert np.array_equal(joined[:n], audio) and not joined[n:].any()  # each sample once
    assert count == 1 or (count - 2) * stride + seg - margin < n  # no segment too many


def test_frame_decoder_drops_notes_shorter_than_min_frames() -> None:
    """A one-frame blip (a ghost octave) goes at min_frames 2; a held note stays."""
    onset = np.zeros((20, VOCAB.num_pitches), np.float32)
    frame = np.zeros_like(onset)
    velocity = np.full_like(onset, 0.5)
    onset[2, 40] = frame[2:12, 40] = 0.9  # ten frames
    onset[5, 52] = frame[5, 52] = 0.9  # one frame
    hop = 0.02
    kept = {n.pitch for n in frames_to_notes(onset, frame, velocity, hop,
                                             FrameDecoding(0.5, 0.5, 1))}
    assert kept == {40 + VOCAB.min_pitch, 52 + VOCAB.min_pitch}
    notes = frames_to_notes(onset, frame, velocity, hop, FrameDecoding(0.5, 0.5, 2))
    assert [(n.pitch, round(n.onset, 3), round(n.offset, 3)) for n in notes] == [
        (40 + VOCAB.min_pitch, 0.05, 0.23)]


def test_frame_joiner_keeps_segment_middles_and_drops_their_edges() -> None:
    frames_per_seg, margin, n = 50, 8, 173
    rng = np.random.default_rng(0)
    truth = rng.random((n, VOCAB.num_pitches)).astype(np.float16)
    count = inference.segment_count(n, frames_per_seg, margin)
    joiner = inference.FrameJoiner(count, frames_per_seg, VOCAB.num_pitches, margin)
    stride = frames_per_seg - 2 * margin
    for first in range(0, count, 2):
        k = min(2, count - first)
        block = np.full((2, frames_per_seg, VOCAB.num_pitches), 7.0, np.float16)
        for row in range(k):
            start = (first + row) * stride
            part = truth[start: start + frames_per_seg]
            block[row, : len(part)] = part
            # what a segment says near its cut edges is never used (unless it is the file's)
            if first + row > 0:
                block[row, :margin] = 9.0
            if first + row < count - 1:
                block[row, -margin:] = 9.0
        joiner.add(first, {"onset": block, "frame": block, "velocity": block}, k)
    for arr in joiner.probs.values():
        assert np.array_equal(arr[:n], truth)


def test_frame_margin_is_whole_frames_and_leaves_a_middle(tiny_model) -> None:
    mc = tiny_model.config
    hop_s = mc.frontend.hop / VOCAB.sample_rate
    cfg = InferenceConfig(frame_margin_s=3 * hop_s)
    assert inference.frame_margin(tiny_model, cfg) == 3
    assert inference.frame_margin(tiny_model, InferenceConfig(frame_margin_s=0.0)) == 0
    too_wide = InferenceConfig(frame_margin_s=mc.frames * hop_s)
    assert inference.frame_margin(tiny_model, too_wide) == 0


def test_token_joiner_rebuilds_a_performance_across_segment_boundaries() -> None:
    notes, pedals = midi_performance(FIXTURE / "2018" / "fixture_01.midi")
    steps = 100  # 1 s segments: notes and pedal spans cross many boundaries
    crossing = [n for n in notes if int(n.onset) < int(n.offset - 1e-9)]
    assert crossing and any(int(p.onset) < int(p.offset - 1e-9) for p in pedals)
    segments = tokens.encode_performance(notes, pedals, steps)
    assert len(segments) % 3  # the last chunk has padding rows
    junk = tokens.encode([(0.1, 0.5, 60, 90)], None, 0.0, steps)  # what padding rows decode to
    width = max(len(s) for s in [*segments, junk])
    joiner = inference.TokenJoiner(steps)
    rows = 3
    for first in range(0, len(segments), rows):
        block = np.full((rows, width), VOCAB.pad, np.int32)
        block[:, : len(junk)] = junk
        part = segments[first: first + rows]
        for i, seq in enumerate(part):
            block[i] = VOCAB.pad
            block[i, : len(seq)] = seq
        joiner.add(block, len(part))
    assert joiner.grammar_errors == 0
    end = len(segments) * steps / VOCAB.steps_per_second
    got_notes, got_pedals = joiner.finish(end)
    want_notes, want_pedals = tokens.normalize(notes, pedals)
    assert_same_notes(got_notes, want_notes, tol=1e-6)
    assert np.allclose(sorted(got_pedals), sorted(want_pedals))


def test_frame_joiner_is_seamless_across_segments() -> None:
    hop, frames_per_seg, segs = 0.02, 50, 4
    total = frames_per_seg * segs - 4  # the last segment is partly padding
    notes = [Note(0.31, 0.99, 60, 100), Note(0.95, 1.05, 64, 50),  # across a boundary
             Note(2.5, 3.8, 72, 80), Note(3.81, 3.9, 72, 30)]
    probs = {k: np.zeros((frames_per_seg * segs, VOCAB.num_pitches), np.float32)
             for k in ("onset", "frame", "velocity")}
    for n in notes:
        a, b, k = int(n.onset / hop), int(n.offset / hop), n.pitch - VOCAB.min_pitch
        probs["onset"][a, k] = 0.9
        probs["frame"][a:b, k] = 0.8
        probs["velocity"][a, k] = n.velocity / 127
    joiner = inference.FrameJoiner(segs, frames_per_seg, VOCAB.num_pitches)
    for first in (0, 2):  # chunks of two segments, as the model delivers them
        block = {k: v[first * frames_per_seg: (first + 2) * frames_per_seg].reshape(
            2, frames_per_seg, -1) for k, v in probs.items()}
        joiner.add(first, block, 2)
    got = joiner.finish(total, hop, FrameDecoding())
    want = frames_to_notes(probs["onset"][:total], probs["frame"][:total],
                           probs["velocity"][:total], hop)
    assert len(want) == len(notes)
    assert_same_notes(got, want, tol=1e-9)
    assert [round(n.onset, 2) for n in got] == [0.31, 0.95, 2.51, 3.81]


# --- the model over real audio --------------------------------------------------------------


def test_transcribe_a_file_then_midi_and_json_round_trip(tiny_model, tiny_checkpoint,
                                                         tmp_path) -> None:
    result = inference.transcribe(PIECE, model=tiny_model, batch_size=BATCH)
    assert result.decoder == "tokens" and result.source == str(PIECE)
    assert result.duration == pytest.approx(4.75, abs=1e-3)
    assert result.notes  # a random decoder still writes notes
    for n in result.notes:
        assert 0 <= n.onset < n.offset <= result.duration + 0.01
        assert VOCAB.min_pitch <= n.pitch <= VOCAB.max_pitch and 1 <= n.velocity <= 127
    got_notes, got_pedals = midi_performance(result.to_midi(tmp_path / "x.mid"))
    assert_same_notes(got_notes, result.notes)
    assert np.allclose(sorted(got_pedals), sorted(result.pedals), atol=1e-3)
    back = Transcription.from_json(result.to_json(tmp_path / "x.json"))
    assert (back.duration, back.decoder, back.model, back.source) == (
        result.duration, result.decoder, result.model, result.source)
    assert_same_notes(back.notes, result.notes, tol=1e-6)
    assert np.allclose(back.pedals, result.pedals) if result.pedals else back.pedals == []
    # Loading by checkpoint path gives the same answer as the preloaded model.
    again = inference.transcribe(PIECE, checkpoint=tiny_checkpoint, batch_size=BATCH)
    assert again.notes == result.notes and again.model == str(tiny_checkpoint)


def test_a_training_run_folder_is_a_checkpoint(tiny_model, tmp_path) -> None:
    import equinox as eqx
    import optax

    from harmonynet_jax.train.checkpoint import Checkpointer

    opt_state = optax.adam(1e-3).init(eqx.filter(tiny_model, eqx.is_inexact_array))
    Checkpointer(tmp_path / "run" / "checkpoints").save(
        3, tiny_model, opt_state, jax.random.key(0),
        {"position": 0, "seed": 0, "shard_index": 0, "shard_count": 1}, {})
    from_run = inference.transcribe(PIECE, checkpoint=tmp_path / "run", batch_size=BATCH)
    assert from_run.notes == inference.transcribe(PIECE, model=tiny_model,
                                                  batch_size=BATCH).notes


def test_midi_writer_keeps_notes_velocities_and_pedal(tmp_path) -> None:
    notes, pedals = midi_performance(FIXTURE / "2019" / "fixture_05.midi")
    notes += [Note(1.0, 1.5, 30, 40), Note(1.2, 1.8, 30, 60)]  # overlapping re-strike
    t = Transcription(notes, pedals, 10.0)
    got_notes, got_pedals = midi_performance(t.to_midi(tmp_path / "p.mid", time_signature="3/4",
                                                        tempo=90))
    want = [n for n in notes if n[:3] != (1.0, 1.5, 30)] + [Note(1.0, 1.2, 30, 40)]
    assert_same_notes(got_notes, want)
    assert len(got_pedals) == len(pedals) > 0
    assert np.allclose(sorted(got_pedals), sorted(pedals), atol=1e-3)
    assert pretty_midi.PrettyMIDI(str(tmp_path / "p.mid")).time_signature_changes[0].numerator \
        == 3


def test_frame_decoder_gives_sounding_notes_and_no_pedal(tiny_model) -> None:
    result = inference.transcribe(PIECE, model=tiny_model, decoder="frames", batch_size=BATCH)
    assert result.pedals == [] and result.decoder == "frames"
    hop = tiny_model.config.frontend.hop / VOCAB.sample_rate
    assert result.notes and all(0 < n.onset < n.offset <= result.duration + hop
                                for n in result.notes)


def test_any_rate_and_channel_count(tiny_model, variants) -> None:
    base = inference.load_recording(PIECE)
    for path in variants.values():
        audio = inference.load_recording(path)
        assert abs(len(audio) - len(base)) <= 64  # same length after resampling (codec pad)
        result = inference.transcribe(path, model=tiny_model, batch_size=BATCH)
        assert result.duration == pytest.approx(4.75, abs=0.06) and result.notes
    # Arrays: 16 kHz mono straight through; other rates and channels through ffmpeg.
    a = inference.transcribe(base, model=tiny_model, batch_size=BATCH)
    b = inference.transcribe(PIECE, model=tiny_model, batch_size=BATCH)
    assert a.notes == b.notes and a.source is None
    stereo = np.stack([base, base], axis=1)
    resampled = inference.audio_from_array(stereo, 32000)
    assert abs(len(resampled) - len(base) / 2) <= 2
    ints = inference.audio_from_array((base * 32767).astype(np.int16), VOCAB.sample_rate)
    assert np.allclose(ints, base, atol=1e-4)
    with pytest.raises(inference.AudioInputError):
        inference.audio_from_array(np.zeros((2, 44100)), 44100)  # channels first


def test_empty_and_silent_input_give_empty_results(tiny_model, tmp_path) -> None:
    ff = ffmpeg_path()
    subprocess.run([ff, "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo",
                    "-t", "0", str(tmp_path / "zero.wav")], check=True)
    subprocess.run([ff, "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono",
                    "-t", "3", str(tmp_path / "silent.flac")], check=True)
    (tmp_path / "empty.mp3").write_bytes(b"")
    for name, duration in (("zero.wav", 0.0), ("silent.flac", 3.0), ("empty.mp3", 0.0)):
        result = inference.transcribe(tmp_path / name, model=tiny_model, batch_size=BATCH)
        assert result.notes == [] and result.pedals == []
        assert result.duration == pytest.approx(duration, abs=1e-3)
        midi = pretty_midi.PrettyMIDI(str(result.to_midi(tmp_path / f"{name}.mid")))
        assert sum(len(i.notes) for i in midi.instruments) == 0
        assert Transcription.from_json(result.to_json(tmp_path / f"{name}.json")).notes == []
    assert inference.transcribe(np.zeros(0), model=tiny_model).notes == []


def test_bad_inputs_raise_clear_errors(tiny_model, tmp_path) -> None:
    (tmp_path / "notes.mp3").write_text("not audio at all\n")
    with pytest.raises(inference.AudioInputError, match="cannot decode .*notes.mp3 as audio"):
        inference.transcribe(tmp_path / "notes.mp3", model=tiny_model)
    with pytest.raises(FileNotFoundError, match="not found"):
        inference.transcribe(tmp_path / "missing.wav", model=tiny_model)
    with pytest.raises(inference.AudioInputError, match="folder"):
        inference.transcribe(tmp_path, model=tiny_model)
    with pytest.raises(ValueError, match="decoder"):
        inference.transcribe(PIECE, model=tiny_model, decoder="beam")


def test_no_bundled_model_is_a_plain_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HARMONYNET_MODEL", str(tmp_path / "harmonynet.eqx"))
    with pytest.raises(inference.ModelUnavailable, match="no trained model is bundled yet"):
        inference.load_model()
    (tmp_path / "junk.eqx").write_bytes(b"\x00" * 64)
    with pytest.raises(inference.ModelUnavailable, match="cannot load a model"):
        inference.load_model(tmp_path / "junk.eqx")


def test_float16_weights_load(tmp_path) -> None:
    model = HarmonyNet(ModelConfig.preset("tiny"), key=jax.random.key(1))
    path = save_weights(tmp_path / "half.eqx", model)  # dtype="float16", as shipped
    assert path.stat().st_size < 0.6 * sum(x.nbytes for x in jax.tree.leaves(
        eqx.filter(model, eqx.is_inexact_array)))
    loaded, _ = inference.load_model(path)
    for a, b in zip(jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(loaded, eqx.is_inexact_array)), strict=True):
        assert b.dtype == np.float32
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-3, atol=1e-4)


# --- metrics ----------------------------------------------------------------------------------


def test_estimate_equal_to_reference_scores_one() -> None:
    notes, pedals = evaluate.read_reference(FIXTURE / "2017" / "fixture_03.midi")
    scores = evaluate.piece_scores(notes, pedals, notes, pedals)
    for key in ("onset_f1", "onset_offset_f1", "onset_offset_velocity_f1", "frame_f1"):
        assert scores[key] == pytest.approx(1.0), key
    # The frame decoder's sounding notes against the key-press reference: extension matters.
    extended = evaluate.sustained(notes, pedals)
    assert evaluate.piece_scores(notes, pedals, extended, [])["onset_offset_f1"] == 1.0
    assert evaluate.piece_scores(notes, pedals, notes, [])["onset_offset_f1"] < 1.0
    shifted = [Note(n.onset + 0.2, n.offset + 0.2, n.pitch, n.velocity) for n in notes]
    worse = evaluate.piece_scores(notes, pedals, shifted, pedals)
    assert worse["onset_f1"] == 0.0 and 0.0 < worse["frame_f1"] < 1.0


def test_evaluation_sets() -> None:
    test = evaluate.maestro_pairs(FIXTURE, "test")
    assert [p.name for p in test] == ["2019/fixture_06"] and test[0].audio.is_file()
    assert len(evaluate.maestro_pairs(FIXTURE, "train")) == 4
    with pytest.raises(ValueError, match="split"):
        evaluate.maestro_pairs(FIXTURE, "nope")
    assert len(evaluate.folder_pairs(FIXTURE)) == 6


def test_weights_file_chooses_its_decoder(tmp_path) -> None:
    model = HarmonyNet(ModelConfig.preset("tiny"), key=jax.random.key(2))
    path = save_weights(tmp_path / "frames.eqx", model,
                        info={"decoder": "frames", "onset_threshold": 0.3, "steps": 10})
    cfg = inference.InferenceConfig()
    tuned = inference.tuned_config(path, cfg)
    assert (tuned.decoder, tuned.onset_threshold) == ("frames", 0.3)
    assert tuned.frame_threshold == cfg.frame_threshold
    plain = save_weights(tmp_path / "plain.eqx", model)
    assert inference.tuned_config(plain, cfg) == cfg
    audio = np.zeros(8_000, np.float32)
    assert inference.transcribe(audio, checkpoint=path).decoder == "frames"
    assert inference.transcribe(audio, checkpoint=path, decoder="tokens").decoder == "tokens"
