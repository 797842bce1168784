"""Tests of the training-data renderer (harmonynet_jax.synth) and its committed fixture."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import mido
import numpy as np
import pytest

from harmonynet_jax.config import SynthConfig
from harmonynet_jax.synth.build import build
from harmonynet_jax.synth.codec import best_lag, decode, lossy_round_trip
from harmonynet_jax.synth.corpus import CorpusPiece, load_tunes, to_score
from harmonynet_jax.synth.effects import EffectsPlan, apply_effects, sample_effects
from harmonynet_jax.synth.fluid import FluidSettings
from harmonynet_jax.synth.folk import harmonise
from harmonynet_jax.synth.harmony import chord_pcs, find_key
from harmonynet_jax.synth.humanize import humanize
from harmonynet_jax.synth.item import record_path
from harmonynet_jax.synth.layout import SPLITS, read_csv, read_json
from harmonynet_jax.synth.midi_io import read_midi, write_midi
from harmonynet_jax.synth.pedal import pedal_events
from harmonynet_jax.synth.performance import Note, PedalEvent, Performance, sanitize
from harmonynet_jax.synth.plan import plan_items, split_of
from harmonynet_jax.synth.render import OutputSpec, render_audio, render_notes, render_to_files
from harmonynet_jax.synth.score import MELODY, Score, ScoreNote
from harmonynet_jax.synth.soundfonts import piano_presets
from harmonynet_jax.synth.textures import GENERATORS, texture_piece

FIXTURE = Path(__file__).parent / "data" / "fixture_maestro"
CFG = SynthConfig()
PRESETS = piano_presets(CFG.soundfont_dirs, CFG.piano_programs)
needs_piano = pytest.mark.skipif(not PRESETS, reason="no piano SoundFont installed")


def preset(font: str, program: int = 0):
    for p in PRESETS:
        if font in Path(p.soundfont).name and p.program == program:
            return p
    return PRESETS[0]


def energy_onsets(x: np.ndarray, rate: int, times: list[float], search: float = 0.03):
    """Energy onset near each expected time: where the 1-ms energy first comes within 40 dB
    of the local peak and 10 dB above the level just before (reverb tail, noise)."""
    w = max(1, int(0.001 * rate))
    env = np.convolve(x.astype(np.float64) ** 2, np.ones(w) / w, "same")
    found = []
    for t0 in times:
        i0, i1 = int((t0 - search) * rate), int((t0 + search) * rate)
        floor = np.median(env[int((t0 - 0.08) * rate):i0])
        thr = max(env[i0:i1].max() * 1e-4, floor * 10)
        found.append((i0 + int(np.argmax(env[i0:i1] >= thr))) / rate)
    return np.array(found)


def isolated_notes(pitches, velocities, gap: float = 0.6) -> Performance:
    return Performance(notes=[Note(int(p), int(v), 0.5 + gap * i, 0.5 + gap * i + 0.3)
                              for i, (p, v) in enumerate(zip(pitches, velocities, strict=True))])


# --- the committed fixture -------------------------------------------------------------


def test_fixture_index_files_and_durations():
    rows = read_csv(FIXTURE)
    assert rows == read_json(FIXTURE)
    assert [r.split for r in rows].count("train") == 4
    assert {r.split for r in rows} == set(SPLITS)
    exts = {Path(r.audio_filename).suffix for r in rows}
    assert exts == {".flac", ".mp3", ".wav"}
    layouts = set()
    for r in rows:
        audio, rate = decode(FIXTURE / r.audio_filename)
        layouts.add((rate, audio.shape[1]))
        assert abs(len(audio) / rate - r.duration) < 1e-3
        assert 4.0 <= r.duration <= 8.0
        assert r.year == int(r.midi_filename.split("/")[0])
    assert layouts == {(44100, 2), (16000, 1)}
    assert sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file()) < 1.5e6


def test_fixture_midi_features():
    for path in sorted(FIXTURE.glob("*/*.midi")):
        mid = mido.MidiFile(str(path))
        tempos = {m.tempo for m in mid if m.type == "set_tempo"}
        pedal = [m.value for m in mid if m.type == "control_change" and m.control == 64]
        assert len(tempos) >= 2, path  # a tempo change
        assert max(pedal) >= 64 and min(pedal) < 64, path
        perf = read_midi(path)
        onsets = [round(n.onset, 3) for n in perf.notes]
        assert max(onsets.count(t) for t in set(onsets)) >= 3, path  # chords
        assert len({n.velocity for n in perf.notes}) > 5, path
        by_pitch: dict[int, list[Note]] = {}
        for n in perf.notes:
            by_pitch.setdefault(n.pitch, []).append(n)
        restrikes = [b.onset - a.offset for ns in by_pitch.values()
                     for a, b in zip(ns, ns[1:], strict=False)]
        assert min(restrikes) < 0.3, path  # a key struck again right after its release


# --- MIDI and performance ------------------------------------------------------------


def test_midi_round_trip_with_tempo_changes(tmp_path):
    perf = Performance(
        notes=[Note(60, 80, 0.1, 0.7), Note(64, 50, 0.1, 0.9), Note(60, 90, 0.7, 1.6),
               Note(108, 127, 1.234, 1.5), Note(21, 5, 1.9, 3.0)],
        pedal=[PedalEvent(0.05, 100), PedalEvent(1.0, 0)],
        tempos=[(0.0, 120.0), (0.8, 73.0), (1.7, 151.0)])
    path = tmp_path / "p.midi"
    write_midi(perf, path, end_seconds=4.0)
    back = read_midi(path)
    assert len(back.notes) == len(perf.notes)
    for a, b in zip(sorted(perf.notes, key=lambda n: (n.onset, n.pitch)), back.notes,
                    strict=True):
        assert (a.pitch, a.velocity) == (b.pitch, b.velocity)
        assert abs(a.onset - b.onset) < 1.5e-3 and abs(a.offset - b.offset) < 1.5e-3
    assert [round(p.time, 3) for p in back.pedal] == [0.05, 1.0]
    assert len(back.tempos) == 3
    assert abs(mido.MidiFile(str(path)).length - 4.0) < 2e-3  # end-of-track keeps the tail


def test_sanitize_resolves_same_key_overlap_and_range():
    perf = Performance(notes=[Note(60, 80, 0.0, 1.0), Note(60, 70, 0.5, 0.8),
                              Note(10, 80, 0.0, 1.0), Note(70, 300, 0.2, 0.2)])
    out = sanitize(perf).notes
    assert [n.pitch for n in out] == [60, 70, 60]
    first, second = out[0], out[2]
    assert first.offset <= second.onset
    assert out[1].velocity == 127 and out[1].offset - out[1].onset >= 0.03


# --- sound ---------------------------------------------------------------------------


def test_piano_presets_found():
    assert PRESETS, "install fluid-soundfont-gm (and the other Debian piano SoundFonts)"
    names = {p.name.lower() for p in PRESETS}
    assert not any("honky" in n or "e.piano" in n for n in names)
    assert all(p.bank == 0 and p.program in CFG.piano_programs for p in PRESETS)


@needs_piano
@pytest.mark.parametrize("font", ["FluidR3_GM", "MuseScore_General"])
def test_rendered_onsets_align_with_midi(tmp_path, font):
    """Through the whole chain (MIDI, FluidSynth, resampling, MP3/FLAC) onsets stay within
    10 ms. Below E2 the energy of a soft attack builds over 15-20 ms (the sound itself starts
    within 2 ms), so there an energy onset is only checked to 25 ms. (TimGM6mb is left out:
    some of its samples, e.g. G4, begin with 8 ms of silence.)"""
    rng = np.random.default_rng(3)
    pitches = [21, 33, 45, 52, 60, 67, 74, 81, 93, 108]
    perf = isolated_notes(pitches, rng.integers(30, 120, len(pitches)))
    times = [n.onset for n in perf.notes]
    for ext, rate, channels in (("mp3", 44100, 2), ("flac", 16000, 1)):
        out = OutputSpec(tmp_path / f"a.{ext}", tmp_path / "a.midi", rate, channels)
        render_to_files(perf, preset(font), FluidSettings(sample_rate=max(rate, 32000)), out,
                        tail_seconds=0.5)
        written = read_midi(out.midi_path).notes
        assert [n.pitch for n in written] == pitches
        assert np.allclose([n.onset for n in written], times, atol=1.1e-3)
        audio, sr = decode(out.audio_path, mono=True)
        err = energy_onsets(audio[:, 0], sr, times) - np.array(times)
        bound = np.where(np.array(pitches) < 40, 0.025, 0.010)
        assert np.all(err > -0.001) and np.all(err < bound), (ext, np.round(err * 1e3, 1))
        assert np.median(err) < 0.006  # no systematic lag (codec or resampler delay)


@needs_piano
def test_onsets_stay_aligned_through_effects(tmp_path):
    perf = isolated_notes([40, 50, 57, 64, 71, 79, 86, 96], [90, 100, 80, 110, 95, 85, 100, 90],
                          gap=0.7)
    plan = EffectsPlan(rt60=0.8, wet=0.25, eq=(("highpass", 60.0, 0.0, 0.7),
                                               ("peak", 900.0, 5.0, 1.0)),
                       noise="pink", snr_db=50.0, codec="aac", codec_kbps=96, peak_dbfs=-3.0)
    out = OutputSpec(tmp_path / "a.flac", tmp_path / "a.midi", 22050, 1)
    render_to_files(perf, preset("FluidR3_GM"), FluidSettings(sample_rate=32000), out,
                    tail_seconds=0.5, post=lambda a, r: apply_effects(a, r, plan))
    audio, sr = decode(out.audio_path, mono=True)
    times = [n.onset for n in perf.notes]
    err = energy_onsets(audio[:, 0], sr, times) - np.array(times)
    assert np.all(np.abs(err) < 0.010), np.round(err * 1e3, 1)


@pytest.mark.parametrize("codec", ["mp3", "aac"])
def test_lossy_round_trip_is_sample_aligned(codec):
    rng = np.random.default_rng(0)
    rate = 32000
    x = np.zeros((rate * 2, 2), np.float32)
    for k in rng.integers(1000, len(x) - 4000, 12):  # decaying bursts
        x[k:k + 3000] += (rng.standard_normal((3000, 2)) * np.exp(-np.arange(3000) / 400)[:, None]
                          * 0.3).astype(np.float32)
    y = lossy_round_trip(x, rate, codec, 128)
    assert y.shape == x.shape
    assert best_lag(x, y, 2000) == 0
    assert np.corrcoef(x[:, 0], y[:, 0])[0, 1] > 0.9


@needs_piano
def test_render_notes_plays_tuples_and_pedal_spans():
    """`render_notes` (the score benchmark's end-to-end mode): the audio lasts to the last
    event plus the tail, is silent before the first onset, sounds at it, and a (down, up)
    pedal span keeps released keys sounding until the pedal comes up."""
    rate = 32000
    notes = [(0.5, 0.7, 60, 90), (1.0, 1.2, 67, 80)]  # (onset, offset, pitch, velocity)
    loud = {}
    for pedals in ([], [(0.4, 1.8)]):
        audio = render_notes(notes, pedals, preset("FluidR3_GM"),
                             FluidSettings(sample_rate=rate), tail_seconds=0.5)
        end = max([n[1] for n in notes] + [u for _, u in pedals]) + 0.5
        assert audio.shape == (round(end * rate), 2) and audio.dtype == np.float32
        assert np.abs(audio[: int(0.45 * rate)]).max() < 1e-4
        assert np.abs(audio[int(0.5 * rate):int(0.7 * rate)]).max() > 0.01
        loud[bool(pedals)] = float(np.mean(audio[int(1.45 * rate):int(1.75 * rate)] ** 2))
    assert loud[True] > 10 * loud[False]  # held by the pedal, not released at 1.2 s


@needs_piano
def test_sustain_pedal_changes_decay(tmp_path):
    notes = [Note(p, 90, 0.3 + 0.5 * i, 0.3 + 0.5 * i + 0.1) for i, p in enumerate([48, 55, 64])]
    rng = np.random.default_rng(0)
    pedal = pedal_events("bar", [0.2], [0.2], 2.6, rng)
    assert pedal and pedal[0].value > 0 and pedal[-1].value < 64
    energies = []
    for ped in ([], pedal):
        audio = render_audio(Performance(notes=notes, pedal=ped), tmp_path / "p.midi",
                             preset("TimGM6mb"), FluidSettings(sample_rate=32000),
                             tail_seconds=0.5)
        decay = audio[int(1.6 * 32000):int(2.5 * 32000)]  # after every key is released
        energies.append(float(np.mean(decay**2)))
    assert energies[1] > 10 * energies[0]  # > 10 dB more sound while the pedal holds


def test_effects_plan_keeps_length_and_sets_level():
    rng = np.random.default_rng(1)
    rate = 22050
    t = np.arange(rate) / rate
    x = (np.sin(2 * np.pi * 440 * t) * (t < 0.1))[:, None].repeat(2, 1).astype(np.float32)
    for seed in range(6):
        plan = dataclasses.replace(sample_effects(np.random.default_rng(seed), CFG), codec=None)
        y = apply_effects(x, rate, plan)
        assert y.shape == x.shape and y.dtype == np.float32
        assert abs(20 * np.log10(np.abs(y).max()) - plan.peak_dbfs) < 0.01
    dry = apply_effects(x, rate, EffectsPlan(peak_dbfs=-1.0))
    wet = apply_effects(x, rate, EffectsPlan(rt60=2.0, wet=0.5, peak_dbfs=-1.0,
                                             seed=int(rng.integers(100))))
    tail = slice(int(0.3 * rate), int(0.6 * rate))
    assert np.mean(dry[tail] ** 2) == 0.0
    assert np.mean(wet[tail] ** 2) > 1e-4  # the room rings on after the sound stops


# --- music ---------------------------------------------------------------------------


def test_textures_reach_keyboard_extremes_and_density():
    pitches, chord_sizes, velocities = set(), [], []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        score, names = texture_piece(rng, 30.0, CFG)
        assert set(names) <= set(GENERATORS)
        onsets: dict[float, int] = {}
        for n in score.notes:
            onsets[n.beat] = onsets.get(n.beat, 0) + 1
        chord_sizes.append(max(onsets.values()))
        perf, _ = humanize(score, rng, CFG)
        pitches |= {n.pitch for n in perf.notes}
        velocities += [n.velocity for n in perf.notes]
    assert min(pitches) <= 23 and max(pitches) == 108
    assert max(chord_sizes) >= 10
    assert min(velocities) < 25 and max(velocities) > 115


def test_humanize_timing_dynamics_and_pedal():
    notes = [ScoreNote(b, 1.0, 72 if b % 2 == 0 else 74, MELODY) for b in range(32)]
    notes += [ScoreNote(b, 4.0, p, 1) for b in range(0, 32, 4) for p in (48, 55, 60)]
    score = Score(notes=notes, bar_length=4.0, qpm=120.0)
    perf, style = humanize(score, np.random.default_rng(5), CFG)
    melody = sorted((n for n in perf.notes if n.pitch in (72, 74)), key=lambda n: n.onset)
    iois = np.diff([n.onset for n in melody])
    assert abs(np.median(iois) - 0.5) < 0.1  # about the written tempo
    assert iois.std() > 0.003  # but not mechanical
    assert iois[-3:].mean() > iois[:8].mean()  # final ritardando
    assert len({n.velocity for n in perf.notes}) > 8
    if style.pedal != "none":
        assert perf.pedal and perf.pedal[-1].value < 64


def test_folk_harmonisation_fits_the_tune():
    tune = [60, 64, 67, 64, 65, 69, 72, 69, 67, 65, 64, 62, 60, 62, 64, 60]
    melody = Score(notes=[ScoreNote(i * 1.0, 1.0, p, MELODY) for i, p in enumerate(tune)],
                   bar_length=4.0, qpm=100.0)
    assert find_key(tune, [1.0] * len(tune)) == (0, False)
    out = harmonise(melody, np.random.default_rng(0))
    assert len(out.notes) > len(tune)
    low = [n for n in out.notes if n.pitch < 58]
    assert low  # a left hand was added
    first_bar_pcs = {n.pitch % 12 for n in low if n.beat < 4}
    assert first_bar_pcs <= set(chord_pcs(0, False, 0))  # C major under the opening bar


def test_corpus_chorale_reduction(tmp_path):
    tunes = load_tunes("bach/bwv269.mxl", tmp_path)
    assert (tmp_path / "bach__bwv269.mxl.json").exists()
    assert load_tunes("bach/bwv269.mxl", tmp_path) == tunes  # served from the cache
    score = to_score(tunes[0], 80.0, CFG.max_keys_per_hand)
    assert len(score.notes) > 100 and score.bar_length == 3.0  # bwv269 is in 3/4
    top = max(score.notes, key=lambda n: (n.role == MELODY, n.pitch))
    assert top.role == MELODY


# --- planning, building, resuming --------------------------------------------------------


def test_splits_are_by_work_and_disjoint():
    plans = plan_items(CFG, seed=11, hours=6.0)
    by_piece: dict[str, set[str]] = {}
    by_work: dict[str, set[str]] = {}
    titles: dict[str, set[str]] = {s: set() for s in SPLITS}
    for p in plans:
        by_piece.setdefault(p.piece_id, set()).add(p.split)
        work = p.piece_id if p.source == "texture" else CorpusPiece(p.piece_id, p.source).work
        by_work.setdefault(work, set()).add(p.split)
        titles[p.split].add(p.title)
    assert all(len(s) == 1 for s in by_piece.values())
    assert all(len(s) == 1 for s in by_work.values())
    assert len(by_work) < len(by_piece)  # some works contributed several movements
    assert any(len([p for p in plans if p.piece_id == k]) > 1 for k in by_piece)
    assert all(titles[s] for s in SPLITS)
    assert not (titles["train"] & titles["validation"] or titles["train"] & titles["test"]
                or titles["validation"] & titles["test"])
    movements = [CorpusPiece(f"beethoven/opus18no1/movement{i}.mxl", "quartet") for i in (1, 3)]
    assert {m.work for m in movements} == {"beethoven/opus18no1"}
    assert CorpusPiece("palestrina/Credo_20_b.krn", "polyphony").work == "palestrina/Credo_20"
    fractions = [sum(split_of(f"texture/0/{i}", CFG.split_fractions) == s for i in range(4000))
                 / 4000 for s in SPLITS]
    assert np.allclose(fractions, CFG.split_fractions, atol=0.03)


TINY = dataclasses.replace(CFG, min_seconds=4.0, max_seconds=6.0)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    start = time.perf_counter()
    result = build(root, hours=0.006, seed=7, cfg=TINY, workers=2, progress=False)
    return root, result, time.perf_counter() - start


@needs_piano
def test_tiny_dataset_builds_in_seconds(tiny_dataset):
    root, result, seconds = tiny_dataset
    assert result.failed == [] and result.rendered == result.planned >= 3
    assert seconds < 40
    rows = read_csv(root)
    assert rows == read_json(root) and len(rows) == result.planned
    for r in rows:
        audio, rate = decode(root / r.audio_filename)
        assert abs(len(audio) / rate - r.duration) < 1e-3
        assert TINY.min_seconds - 0.5 <= r.duration <= TINY.max_seconds + 0.01
        assert rate in TINY.output_rates
        perf = read_midi(root / r.midi_filename)
        assert perf.notes and perf.end <= r.duration
    titles = {s: {r.canonical_title for r in rows if r.split == s} for s in SPLITS}
    assert all(titles.values())  # seed 7 puts items in every split...
    assert not (titles["train"] & titles["validation"] or titles["train"] & titles["test"]
                or titles["validation"] & titles["test"])  # ...and no piece in two
    summary = json.loads((root / "summary.json").read_text())
    assert summary["items"] == len(rows) and summary["notes"] > 0
    assert (root / "summary.png").stat().st_size > 10_000


@needs_piano
def test_resume_skips_finished_items(tiny_dataset):
    root, first, _ = tiny_dataset
    again = build(root, hours=0.006, seed=7, cfg=TINY, workers=1, progress=False)
    assert again.rendered == 0 and again.skipped == first.planned
    victim = read_csv(root)[0]
    item_id = Path(victim.audio_filename).stem
    midi_bytes = (root / victim.midi_filename).read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.midi")}
    record_path(root, item_id).unlink()
    (root / victim.audio_filename).unlink()
    third = build(root, hours=0.006, seed=7, cfg=TINY, workers=1, progress=False)
    assert third.rendered == 1 and third.skipped == first.planned - 1
    assert (root / victim.audio_filename).exists()
    changed = [p for p, m in mtimes.items() if p.stat().st_mtime_ns != m]
    assert changed == [root / victim.midi_filename]
    assert (root / victim.midi_filename).read_bytes() == midi_bytes  # same seed, same item
    assert victim in read_csv(root) and len(read_csv(root)) == first.planned
    assert not list(root.rglob(".*.tmp*"))  # no temporary files left behind
