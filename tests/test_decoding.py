"""Grammar-constrained greedy decoding: the grammar against loader output and hand-made faults,
random legal sequences that must decode (and, canonically, re-encode to themselves), cached vs
uncached greedy decoding, and a tiny model overfitting real rendered audio."""

from __future__ import annotations

import functools
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pretty_midi
import pytest
import soundfile

from harmonynet_jax import grammar, tokens
from harmonynet_jax.config import ModelConfig
from harmonynet_jax.decoding import cache_sizes, greedy_decode
from harmonynet_jax.model import HarmonyNet
from harmonynet_jax.tokens import VOCAB

FIXTURE = Path(__file__).parent / "data" / "fixture_maestro"
TINY = ModelConfig.preset("tiny")
V = VOCAB
OVERFIT_STEPS = 120  # adam at 3e-3; both segments are exact from about 60 steps


def midi_performance(path: Path) -> tuple[list[tuple], list[tuple]]:
    """Notes (onset, offset, pitch, velocity) and sustain spans (CC64 >= 64) in seconds."""
    midi = pretty_midi.PrettyMIDI(str(path))
    notes = [(n.start, n.end, n.pitch, n.velocity) for i in midi.instruments for n in i.notes]
    changes = sorted(
        (c.time, c.value) for i in midi.instruments for c in i.control_changes if c.number == 64
    )
    pedals, down = [], None
    for time, value in changes:
        if value >= 64 and down is None:
            down = time
        elif value < 64 and down is not None:
            pedals.append((down, time))
            down = None
    return notes, pedals


@eqx.filter_jit
def encode(model: HarmonyNet, audio: jax.Array) -> jax.Array:
    return model.encode(audio)


def padded(seqs: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(seqs), max(len(s) for s in seqs)), V.pad, np.int32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def ends_with_eos_then_pad(row: np.ndarray) -> bool:
    eos = np.flatnonzero(row == V.eos)
    return len(eos) == 1 and bool(np.all(row[eos[0] + 1 :] == V.pad))


# --- the grammar --------------------------------------------------------------------------


def test_grammar_accepts_every_loader_sequence() -> None:
    midis = sorted(FIXTURE.glob("*/*.midi"))
    assert len(midis) >= 5
    seqs, steps = [], []
    for segment_steps in (37, 100, 512):
        for m in midis:
            for s in tokens.encode_performance(*midi_performance(m), segment_steps):
                seqs.append(s)
                steps.append(segment_steps)
    batch = jnp.asarray(padded(seqs))
    for canonical in (True, False):
        legal = np.asarray(grammar.sequence_legal(batch, jnp.asarray(steps), canonical=canonical))
        bad = np.argwhere(~legal)
        assert not len(bad), f"canonical={canonical}: {tokens.names(seqs[bad[0][0]])}"


def _seq(*toks: int) -> list[int]:
    return [*toks, V.eos]


N60, N62 = V.note(60), V.note(62)
# (sequence, index of the first illegal token in canonical mode, ... in free mode or None)
FAULTS = [
    (_seq(V.sos), 0, 0),
    (_seq(N60, V.pedal_on, V.tie_end), 1, 1),  # PEDAL_ON only first in the tie section
    (_seq(N62, N60, V.tie_end), 1, 1),  # tie pitches ascend
    (_seq(V.tie_end, V.velocity(5)), 1, 1),  # an event before any TIME
    (_seq(V.tie_end, V.time(5)), 2, 2),  # EOS right after a TIME
    (_seq(V.tie_end, V.time(5), V.pedal_on, V.time(5)), 3, 3),  # TIME must increase
    (_seq(V.tie_end, V.time(5), V.velocity(0)), 2, 2),  # note-off state with nothing sounding
    (_seq(V.tie_end, V.time(5), V.velocity(5), V.time(6)), 3, 3),  # VELOCITY needs its NOTE
    (_seq(V.tie_end, V.time(5), V.velocity(5), N60, N60), 4, 4),  # struck while sounding
    (_seq(V.tie_end, V.time(40)), 1, 1),  # beyond the 40-step segment
    (_seq(V.tie_end, V.time(1), V.pedal_off), 2, 2),  # pedal is up
    ([V.tie_end, V.eos, N60], 2, 2),  # only PAD after EOS
    # Canonical-only: forms the loader never writes.
    (_seq(N60, V.tie_end, V.time(0), V.velocity(0), N60), 3, None),  # release at TIME(0)
    (_seq(V.tie_end, V.time(1), V.velocity(5), N60, V.velocity(0), N60), 4, None),  # on, off
    (_seq(V.tie_end, V.time(1), V.velocity(5), N62, N60), 4, None),  # ons descend
    (_seq(V.tie_end, V.time(1), V.velocity(5), N60, V.time(2), V.velocity(5), N62), 5, None),
    (_seq(V.tie_end, V.time(1), V.pedal_on, V.time(2), V.pedal_off, V.pedal_on), 5, None),
    (_seq(V.tie_end, V.time(1), V.velocity(5), N60, V.pedal_on), 4, None),  # pedal after ons
]


@pytest.mark.parametrize("canonical", [True, False])
def test_grammar_rejects_faults(canonical: bool) -> None:
    batch = jnp.asarray(padded([np.asarray(seq) for seq, _, _ in FAULTS]))  # PAD after EOS
    legal = np.asarray(grammar.sequence_legal(batch, 40, canonical=canonical))
    for (seq, canonical_at, free_at), row in zip(FAULTS, legal, strict=True):
        first_bad = int(np.argmin(row)) if not row.all() else None
        assert first_bad == (canonical_at if canonical else free_at), tokens.names(seq)


@functools.partial(jax.jit, static_argnames=("length", "canonical"))
def sample_legal(key: jax.Array, num_steps: jax.Array, length: int, canonical: bool):
    """Random legal sequences: Gumbel-max over the grammar mask with the position budget."""
    batch = num_steps.shape[0]

    def step(state, xs):
        i, k = xs
        legal = grammar.legal_mask(state, length - i, canonical=canonical)
        noise = jax.random.gumbel(k, legal.shape)
        noise = noise.at[:, V.eos].add(-1.5)  # longer sequences exercise more of the grammar
        token = jnp.argmax(jnp.where(legal, noise, -jnp.inf), -1).astype(jnp.int32)
        return grammar.advance(state, token), (token, legal.any(-1))

    keys = jax.random.split(key, length)
    _, (toks, nonempty) = jax.lax.scan(
        step, grammar.init_state(batch, num_steps), (jnp.arange(length), keys)
    )
    return toks.T, nonempty.T


def events_to_performance(seg: tokens.SegmentEvents, steps: int):
    """Notes/pedals in seconds whose encoding at start 0 should be the decoded tokens: tied
    notes begin a second earlier, unfinished ones end after the segment."""
    late = (steps + 10) / 100.0
    at = lambda step: late if step is None else step / 100.0  # noqa: E731
    notes = [(-1.0, at(seg.tied_ends.get(p)), p, 64) for p in seg.tied]
    notes += [(on / 100.0, at(off), p, vel) for on, off, p, vel in seg.notes]
    pedals = [(-1.0, at(seg.tied_pedal_end))] if seg.tied_pedal else []
    pedals += [(on / 100.0, at(off)) for on, off in seg.pedals]
    return notes, pedals


@pytest.mark.parametrize("canonical", [True, False])
def test_random_legal_sequences_decode(canonical: bool) -> None:
    length, batch = 40, 96
    rng = np.random.default_rng(0)
    num_steps = rng.integers(1, 60, batch).astype(np.int32)
    toks, nonempty = sample_legal(jax.random.key(7), jnp.asarray(num_steps), length, canonical)
    toks = np.asarray(toks)
    assert np.asarray(nonempty).all()  # the mask never empties, even near the budget's end
    assert np.asarray(grammar.sequence_legal(jnp.asarray(toks), jnp.asarray(num_steps),
                                             canonical=canonical)).all()
    lengths, note_count = [], 0
    for row, steps in zip(toks, num_steps, strict=True):
        assert ends_with_eos_then_pad(row), tokens.names(row)
        seg = tokens.decode_segment(row)
        assert seg.errors == 0, tokens.names(row)
        times = row[(row >= V.time_offset) & (row < V.time_offset + V.num_time)] - V.time_offset
        assert np.all(times < steps) and np.all(np.diff(times) > 0)
        seq = row[: int(np.flatnonzero(row == V.eos)[0]) + 1]
        lengths.append(len(seq))
        note_count += len(seg.notes)
        if canonical:
            again = tokens.encode(*events_to_performance(seg, int(steps)), 0.0, int(steps))
            assert again.tolist() == seq.tolist(), (tokens.names(seq), tokens.names(again))
    assert max(lengths) == length and note_count > batch  # budget-limited, note-rich samples


# --- greedy decoding ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cached_greedy_equals_uncached(seed: int) -> None:
    model = HarmonyNet(TINY, key=jax.random.key(seed))
    audio = 0.1 * jax.random.normal(jax.random.key(100 + seed), (2, TINY.segment_samples))
    memory = encode(model, audio)
    # A 16-slot cache that grows to 32 and 64 slots on the way (three loops).
    assert cache_sizes(TINY.max_decode_len, 16) == [16, 32, 64]
    cached = np.asarray(greedy_decode(model, memory, cache_bucket=16))
    uncached = np.asarray(greedy_decode(model, memory, use_cache=False))
    np.testing.assert_array_equal(cached, uncached)
    assert cached.shape == (2, TINY.max_decode_len) and cached.dtype == np.int32
    for row in cached:
        assert ends_with_eos_then_pad(row), tokens.names(row)
        assert tokens.decode_segment(row).errors == 0, tokens.names(row)
    assert (cached != V.pad).sum(1).max() > 32  # the rows reach the last cache size


def test_short_budget_and_free_grammar_still_decode() -> None:
    model = HarmonyNet(TINY, key=jax.random.key(3))
    memory = 0.5 * jax.random.normal(jax.random.key(4), (4, TINY.frames, TINY.d_model))
    steps = jnp.asarray([5, 20, 50, 100], jnp.int32)
    out = np.asarray(greedy_decode(model, memory, max_len=7, num_steps=steps, canonical=False))
    assert out.shape == (4, 7)
    for row, n in zip(out, np.asarray(steps), strict=True):
        assert ends_with_eos_then_pad(row), tokens.names(row)
        assert tokens.decode_segment(row).errors == 0
        times = row[(row >= V.time_offset) & (row < V.time_offset + V.num_time)]
        assert np.all(times - V.time_offset < n)


def test_tiny_model_overfits_real_audio() -> None:
    """Two segments of a rendered fixture piece; greedy decoding must give back each one's
    tokens exactly. Both begin with PEDAL_ON, so the rest must come from the audio."""
    row = next(r for r in _maestro_rows() if r["audio_filename"].endswith(".wav"))
    audio, rate = soundfile.read(FIXTURE / row["audio_filename"], dtype="float32")
    assert rate == V.sample_rate and audio.ndim == 1
    notes, pedals = midi_performance(FIXTURE / row["midi_filename"])
    steps = TINY.segment_samples // V.samples_per_step
    starts = (0.5, 2.0)
    seqs = [tokens.encode(notes, pedals, s, steps) for s in starts]
    assert all(len(s) <= TINY.max_decode_len for s in seqs) and seqs[0][0] == seqs[1][0]
    target = np.full((2, TINY.max_decode_len), V.pad, np.int32)
    for i, s in enumerate(seqs):
        target[i, : len(s)] = s
    inputs = np.concatenate([np.full((2, 1), V.sos, np.int32), target[:, :-1]], 1)
    weight = (np.arange(TINY.max_decode_len)[None] < np.array([[len(s)] for s in seqs]))
    segments = np.stack(
        [audio[round(s * rate) : round(s * rate) + TINY.segment_samples] for s in starts]
    )

    model = HarmonyNet(TINY, key=jax.random.key(0))
    optimizer = optax.adam(3e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def train(model, opt_state, segments: jax.Array, steps: int):
        def loss(m: HarmonyNet) -> jax.Array:  # audio is an argument: no constant folding
            logits = m.decode_train(m.encode(segments), inputs)
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, target)
            return (ce * weight).sum() / weight.sum()

        def body(_, carry):
            m, s = carry
            params = eqx.filter(m, eqx.is_inexact_array)
            updates, s = optimizer.update(eqx.filter_grad(loss)(m), s, params)
            return eqx.apply_updates(m, updates), s

        return jax.lax.fori_loop(0, steps, body, (model, opt_state))

    model, opt_state = train(model, opt_state, jnp.asarray(segments), OVERFIT_STEPS)
    memory = encode(model, jnp.asarray(segments))
    decoded = np.asarray(greedy_decode(model, memory, cache_bucket=16))  # as the cached test
    for i in range(2):
        assert decoded[i].tolist() == target[i].tolist(), (
            tokens.names(decoded[i]), tokens.names(seqs[i]))


def _maestro_rows() -> list[dict[str, str]]:
    import csv

    with open(FIXTURE / "maestro-v3.0.0.csv", newline="") as f:
        return list(csv.DictReader(f))
