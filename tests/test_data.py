"""The Rust loader seen from Python: batches, determinism, shards, resume and bad input."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from harmonynet_jax import data
from harmonynet_jax import tokens as T

FIXTURE = Path(__file__).parent / "data" / "fixture_maestro"
SEGMENT = 32_000  # 2 s
HOP = 320


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def make_stream(root=FIXTURE, split="train", *, cache_dir, batch_size=4, seed=0, **kw):
    kw.setdefault("max_tokens", 384)
    kw.setdefault("frame_hop", HOP)
    return data.Stream(root, split, SEGMENT, batch_size, seed, cache_dir=cache_dir, **kw)


def take(stream, n):
    out = []
    for _ in range(n):
        out.append(next(stream))
    return out


def same(a: dict, b: dict) -> bool:
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def fixture_rows() -> list[dict[str, str]]:
    with open(FIXTURE / "maestro-v3.0.0.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_batch_layout_and_contents_match_the_files(cache):
    stream = make_stream(cache_dir=cache, epochs=1)
    batch = next(stream)
    b = batch["audio"].shape[0]
    assert batch["audio"].shape == (b, SEGMENT) and batch["audio"].dtype == np.float32
    assert batch["tokens"].shape == (b, 384) and batch["tokens"].dtype == np.int32
    assert batch["token_mask"].dtype == bool
    for key in ("onset", "frame", "offset", "velocity"):
        assert batch[key].shape == (b, SEGMENT // HOP, 88)
    assert batch["pedal"].shape == (b, SEGMENT // HOP)

    for row in range(b):
        piece = stream.piece(int(batch["piece"][row]))
        start = int(batch["start_sample"][row])
        assert start % T.VOCAB.samples_per_step == 0
        # Audio: the same decoder, sliced.
        audio = data.load_audio(FIXTURE / piece["audio_filename"])
        want = np.zeros(SEGMENT, np.float32)
        chunk = audio[start : start + SEGMENT]
        want[: len(chunk)] = chunk
        np.testing.assert_array_equal(batch["audio"][row], want)
        # Tokens: the segment of the piece's MIDI.
        notes, pedals = data.read_midi(FIXTURE / piece["midi_filename"])
        n = int(batch["token_mask"][row].sum())
        expected = T.encode(notes, pedals, start / T.VOCAB.sample_rate, SEGMENT // 160)
        np.testing.assert_array_equal(batch["tokens"][row, :n], expected)
        assert (batch["tokens"][row, n:] == T.VOCAB.pad).all()
        assert T.decode_segment(batch["tokens"][row]).errors == 0
        # Frame targets agree with the token onsets of the segment.
        seg_notes, _ = T.decode(expected, SEGMENT // 160)
        fresh = [x for x in seg_notes if x.onset > 0 or start == 0]
        assert batch["onset"][row].sum() >= len([x for x in fresh if x.onset > 0])
        assert batch["frame"][row].sum() > 0


def test_midi_reader_agrees_with_pretty_midi():
    for row in fixture_rows():
        notes, pedals = data.read_midi(FIXTURE / row["midi_filename"])
        pm = pretty_midi.PrettyMIDI(str(FIXTURE / row["midi_filename"]))
        ref = sorted(
            (n.start, n.end, n.pitch, n.velocity) for inst in pm.instruments for n in inst.notes
        )
        got = sorted(map(tuple, notes.tolist()))
        assert len(got) == len(ref) > 0
        np.testing.assert_allclose(np.array(got), np.array(ref), atol=1e-6)
        cc = [c for inst in pm.instruments for c in inst.control_changes if c.number == 64]
        if any(c.value >= 64 for c in cc):
            assert len(pedals) > 0


def test_sustain_extension():
    notes = np.array([[0.0, 0.5, 60, 80], [0.2, 0.3, 64, 80], [1.2, 1.5, 64, 80]])
    pedals = np.array([[0.25, 2.0]])
    ext = data.sustain_extend(notes, pedals)
    by_pitch = {(int(p), round(a, 6)): round(b, 6) for a, b, p, _ in ext}
    assert by_pitch[(60, 0.0)] == 2.0  # released under the pedal: lasts until pedal up
    assert by_pitch[(64, 0.2)] == 1.2  # re-struck while sustained: ends at the new onset
    assert by_pitch[(64, 1.2)] == 2.0


def test_same_seed_same_batches_whatever_the_threads(cache):
    a = take(make_stream(cache_dir=cache, seed=7, threads=1), 6)
    b = take(make_stream(cache_dir=cache, seed=7, threads=3, prefetch=6), 6)
    assert all(same(x, y) for x, y in zip(a, b, strict=True))
    c = take(make_stream(cache_dir=cache, seed=8, threads=2), 6)
    assert not all(same(x, y) for x, y in zip(a, c, strict=True))


def test_epochs_reshuffle_and_end(cache):
    # 14 segment slots in an epoch of the fixture: batches of 2 end exactly at the epoch end.
    stream = make_stream(cache_dir=cache, seed=3, epochs=2, batch_size=2)
    batches = list(stream)
    per_epoch = stream.batches_per_epoch
    assert per_epoch == 7
    assert len(batches) == 2 * per_epoch
    assert [b["epoch"] for b in batches] == [0] * per_epoch + [1] * per_epoch
    first = sorted(zip(*(np.concatenate([b[k] for b in batches[:per_epoch]])
                         for k in ("piece", "start_sample")), strict=True))
    second = sorted(zip(*(np.concatenate([b[k] for b in batches[per_epoch:]])
                          for k in ("piece", "start_sample")), strict=True))
    assert first != second  # new random offsets each epoch
    with pytest.raises(StopIteration):
        next(stream)


def test_shards_are_disjoint_and_cover_the_epoch(cache):
    def items(shard_index, shard_count):
        stream = make_stream(cache_dir=cache, sequential=True, epochs=1, batch_size=3,
                             shard_index=shard_index, shard_count=shard_count)
        return [(int(p), int(s)) for b in stream for p, s in zip(b["piece"], b["start_sample"],
                                                                  strict=True)]

    everything = items(0, 1)
    assert len(everything) == len(set(everything))
    shards = [items(i, 3) for i in range(3)]
    union = [x for shard in shards for x in shard]
    assert sorted(union) == sorted(everything)
    assert len(set(union)) == len(union)
    # Sequential mode tiles each piece from its start.
    starts = sorted(s for p, s in everything if p == 0)
    assert starts == list(range(0, SEGMENT * len(starts), SEGMENT))


def test_resume_from_position_is_exact(cache):
    stream = make_stream(cache_dir=cache, seed=11)
    batches = take(stream, 5)
    assert stream.position == 5
    state = stream.state_dict()

    resumed = make_stream(cache_dir=cache, seed=11, position=3)
    assert same(next(resumed), batches[3]) and same(next(resumed), batches[4])

    other = make_stream(cache_dir=cache, seed=11)
    other.load_state_dict(state)
    assert same(next(other), next(stream))
    with pytest.raises(ValueError):
        other.load_state_dict({**state, "seed": 12})


def test_audio_is_cached_on_disk(cache):
    list(make_stream(cache_dir=cache, epochs=1))
    cached = list(cache.glob("*.f32"))
    assert len(cached) == 4  # the four training pieces
    sizes = sorted(p.stat().st_size // 4 for p in cached)
    durations = sorted(float(r["duration"]) for r in fixture_rows() if r["split"] == "train")
    for samples, seconds in zip(sizes, durations, strict=True):
        assert abs(samples - seconds * 16_000) < 16_000 * 0.1


def test_load_audio_any_format_to_16k_mono():
    for row in fixture_rows():
        audio = data.load_audio(FIXTURE / row["audio_filename"])
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) / 16_000 - float(row["duration"])) < 0.1
        assert 0.001 < np.abs(audio).max() <= 1.5


def broken_dataset(tmp_path: Path) -> Path:
    """The fixture plus one file of every kind of breakage, all in the train split."""
    root = tmp_path / "broken"
    shutil.copytree(FIXTURE, root)
    (root / "maestro-v3.0.0.json").unlink()
    (root / "bad").mkdir()
    (root / "bad" / "garbage.midi").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (root / "bad" / "empty.wav").write_bytes(b"")
    (root / "bad" / "text.mp3").write_text("this is not audio\n" * 100)
    silent = pretty_midi.PrettyMIDI()
    silent.instruments.append(pretty_midi.Instrument(0))
    silent.write(str(root / "bad" / "no_notes.midi"))
    good_midi = "2018/fixture_01.midi"
    extra = [
        ("missing audio", good_midi, "bad/nowhere.wav"),
        ("missing midi", "bad/nowhere.midi", "2018/fixture_01.flac"),
        ("corrupt midi", "bad/garbage.midi", "2018/fixture_01.flac"),
        ("no notes", "bad/no_notes.midi", "2018/fixture_01.flac"),
        ("empty audio", good_midi, "bad/empty.wav"),
        ("not audio", good_midi, "bad/text.mp3"),
    ]
    with open(root / "maestro-v3.0.0.csv", "a", newline="") as f:
        w = csv.writer(f)
        for title, midi, audio in extra:
            w.writerow(["Broken", title, "train", 2020, midi, audio, 4.0])
    return root


def test_bad_files_are_skipped_with_named_warnings(tmp_path, cache, caplog):
    root = broken_dataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="harmonynet_jax.data"):
        stream = make_stream(root, cache_dir=cache, sequential=True, epochs=1)
        assert stream.num_pieces == 6  # 4 good + empty audio + not audio (found on decode)
        batches = list(stream)
    text = caplog.text
    for name in ("nowhere.wav", "nowhere.midi", "garbage.midi", "no_notes.midi",
                 "empty.wav", "text.mp3"):
        assert name in text, f"no warning names {name}"
    assert stream.skipped_files == 6
    pieces = {int(p) for b in batches for p in b["piece"]}
    assert pieces <= {0, 1, 2, 3}  # undecodable pieces are replaced by good ones
    assert all(T.decode_segment(t).errors == 0 for b in batches for t in b["tokens"])


def test_nothing_usable_is_a_clear_error(tmp_path, cache):
    root = tmp_path / "allbad"
    root.mkdir()
    (root / "a.wav").write_text("not audio")
    shutil.copy(FIXTURE / "2018" / "fixture_01.midi", root / "a.midi")
    (root / "maestro-v3.0.0.csv").write_text(
        "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n"
        "X,Y,train,2020,a.midi,a.wav,3.0\n"
    )
    stream = make_stream(root, cache_dir=cache)
    with pytest.raises(data.LoaderError, match="decodable audio"):
        next(stream)
    with pytest.raises(data.LoaderError, match="no usable pieces"):
        make_stream(root, split="validation", cache_dir=cache)


def test_argument_and_layout_errors(tmp_path, cache):
    with pytest.raises(FileNotFoundError):
        make_stream(tmp_path / "nowhere", cache_dir=cache)
    with pytest.raises(data.LoaderError, match="maestro"):
        make_stream(tmp_path, cache_dir=cache)
    with pytest.raises(ValueError, match="split"):
        make_stream(split="training", cache_dir=cache)
    with pytest.raises(ValueError, match="multiple of 160"):
        data.Stream(FIXTURE, "train", 32_001, 2, 0, cache_dir=cache)
    with pytest.raises(ValueError, match="shard"):
        make_stream(shard_index=2, shard_count=2, cache_dir=cache)
    with pytest.raises(FileNotFoundError):
        data.load_audio(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(data.LoaderError, match="text.wav"):
        data.load_audio(tmp_path / "text.wav")
