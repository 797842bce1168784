"""The token grammar of docs/tokens.md as a jittable state machine for constrained decoding.

`init_state` -> (`legal_mask` -> pick a token -> `advance`)* inside `jax.lax.while_loop`. Every
sequence produced this way decodes with `tokens.decode_segment` without grammar errors, and,
given the remaining budget of positions, always reaches EOS in time.

`canonical=True` (the default) additionally admits only the loader's canonical encoding
(docs/tokens.md, "one segment's sequence"): per step note-offs (ascending), PEDAL_OFF,
PEDAL_ON, note-ons (ascending); no VELOCITY that repeats the current bin; at most one pedal
event per step (touching pedal spans merge); nothing ends at TIME(0) (whatever sounds there is
tied, and a tied note or pedal lasts into the segment). Every loader-encoded sequence is
accepted in both modes; canonical mode just never produces forms the model was not trained on.

All ids come from `tokens.VOCAB`.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Int

from harmonynet_jax.tokens import VOCAB

# Sections.
TIE_FIRST = 0  # nothing emitted yet (PEDAL_ON is allowed only here)
TIE = 1  # inside the tie section
BODY = 2  # after TIE_END
DONE = 3  # after EOS
# Phases of the events at one step (canonical order).
PHASE_OFFS, PHASE_PEDAL_OFF, PHASE_PEDAL_ON, PHASE_ONS = 0, 1, 2, 3

_NO_LIMIT = 1 << 30


class GrammarState(eqx.Module):
    """Per-row decoding state (all arrays have a leading batch axis B)."""

    section: Int[Array, " B"]
    time: Int[Array, " B"]  # step of the last TIME, -1 before the first
    velocity: Int[Array, " B"]  # current velocity bin, -1 while unset
    sounding: Bool[Array, "B P"]  # keys held (tied or struck in this segment), P = 88
    pedal: Bool[Array, " B"]  # sustain pedal down
    event_since_time: Bool[Array, " B"]  # an event followed the last TIME
    pending_note: Bool[Array, " B"]  # a VELOCITY awaits its NOTE
    phase: Int[Array, " B"]  # PHASE_* of the current step
    last_pitch: Int[Array, " B"]  # key index of the last tie note / note of this phase, or -1
    num_steps: Int[Array, " B"]  # TIME(t) needs t < num_steps (the segment length in steps)


def init_state(batch: int, num_steps: int | Int[Array, " B"]) -> GrammarState:
    """State before the first token of `batch` segments of `num_steps` steps each."""
    num_steps = jnp.broadcast_to(jnp.asarray(num_steps, jnp.int32), (batch,))
    minus_one = jnp.full((batch,), -1, jnp.int32)
    false = jnp.zeros((batch,), bool)
    return GrammarState(
        section=jnp.full((batch,), TIE_FIRST, jnp.int32),
        time=minus_one,
        velocity=minus_one,
        sounding=jnp.zeros((batch, VOCAB.num_pitches), bool),
        pedal=false,
        event_since_time=false,
        pending_note=false,
        phase=jnp.zeros((batch,), jnp.int32),
        last_pitch=minus_one,
        num_steps=num_steps,
    )


def _place(mask: Bool[Array, "B V"], start: int, part: Bool[Array, "B n"]) -> Array:
    return mask.at[:, start : start + part.shape[1]].set(part)


def _set(mask: Bool[Array, "B V"], token: int, col: Bool[Array, " B"]) -> Array:
    return mask.at[:, token].set(col)


def legal_mask(
    state: GrammarState,
    remaining: Int[Array, ...] | int | None = None,
    *,
    canonical: bool = True,
) -> Bool[Array, "B V"]:
    """Tokens legal next. `remaining`: positions left including this one ([B], [1] or int).

    With a budget, a token is legal only if the sequence can still close with EOS within it:
    the shortest completion after any state is at most 3 tokens (e.g. TIME, VELOCITY, NOTE
    must be followed by EOS), so the mask never empties while remaining >= 1.
    """
    s = state
    v = VOCAB
    batch = s.section.shape[0]
    pitch = jnp.arange(v.num_pitches, dtype=jnp.int32)[None, :]
    steps = jnp.arange(v.num_time, dtype=jnp.int32)[None, :]
    bins = jnp.arange(v.num_velocity, dtype=jnp.int32)[None, :]
    budget = jnp.broadcast_to(
        jnp.asarray(_NO_LIMIT if remaining is None else remaining, jnp.int32).reshape(-1),
        (batch,),
    )
    fits1, fits2, fits3 = budget >= 2, budget >= 3, budget >= 4  # room for d more after this

    in_tie = s.section <= TIE
    body = s.section == BODY
    has_time = s.time >= 0
    free = body & ~s.pending_note  # may start an event, a TIME or EOS
    in_step = free & has_time  # may add an event to the current step
    can_close = free & (~has_time | s.event_since_time)
    above = pitch > s.last_pitch[:, None]

    # Keys a NOTE may target as a note-off / note-on right now.
    off_ok = s.sounding
    on_ok = ~s.sounding
    if canonical:
        off_ok = off_ok & ((s.phase == PHASE_OFFS) & (s.time > 0))[:, None] & above
        on_ok = on_ok & ((s.phase < PHASE_ONS)[:, None] | above)
    any_off, any_on = off_ok.any(-1), on_ok.any(-1)

    vel = s.velocity[:, None]
    body_note = (body & has_time)[:, None] & (((vel == 0) & off_ok) | ((vel > 0) & on_ok))
    tie_note = in_tie[:, None] & above
    notes = (tie_note & fits2[:, None]) | (body_note & fits1[:, None])

    velocity_ok = in_step[:, None] & jnp.where(bins == 0, any_off[:, None], any_on[:, None])
    if canonical:
        velocity_ok = velocity_ok & (bins != vel)
    velocity_ok = velocity_ok & fits2[:, None]

    pedal_on = in_step & ~s.pedal
    pedal_off = in_step & s.pedal
    if canonical:
        pedal_on = pedal_on & (s.phase == PHASE_OFFS)
        pedal_off = pedal_off & (s.phase == PHASE_OFFS) & (s.time > 0)
    pedal_on = ((s.section == TIE_FIRST) & fits2) | (pedal_on & fits1)
    pedal_off = pedal_off & fits1

    # TIME(t): later than the last, inside the segment, and some event must be possible at t
    # (a TIME resets the phase; sounding keys, pedal and velocity carry over).
    sounding_any = s.sounding.any(-1)[:, None]
    silent_any = (~s.sounding).any(-1)[:, None]
    direct_off = (vel == 0) & sounding_any
    pedal_at = jnp.ones_like(steps, bool)
    if canonical:
        direct_off = direct_off & (steps > 0)
        pedal_at = ~s.pedal[:, None] | (steps > 0)
    single = pedal_at | direct_off | ((vel > 0) & silent_any)  # one event, then EOS
    via_velocity = silent_any | (sounding_any & (steps > 0 if canonical else True))
    time_ok = (
        can_close[:, None]
        & (steps > s.time[:, None])
        & (steps < s.num_steps[:, None])
        & jnp.where(single, fits2[:, None], via_velocity & fits3[:, None])
    )

    mask = jnp.zeros((batch, v.size), bool)
    mask = _set(mask, v.pad, s.section == DONE)
    mask = _set(mask, v.eos, can_close)
    mask = _set(mask, v.tie_end, in_tie & fits1)
    mask = _set(mask, v.pedal_on, pedal_on)
    mask = _set(mask, v.pedal_off, pedal_off)
    mask = _place(mask, v.time_offset, time_ok)
    mask = _place(mask, v.velocity_offset, velocity_ok)
    mask = _place(mask, v.note_offset, notes)
    return mask


def advance(state: GrammarState, token: Int[Array, " B"]) -> GrammarState:
    """State after each row emits `token` (assumed legal; rows in DONE stay DONE)."""
    s = state
    v = VOCAB
    token = token.astype(jnp.int32)
    in_tie = s.section <= TIE
    body = s.section == BODY
    is_time = body & (token >= v.time_offset) & (token < v.time_offset + v.num_time)
    is_vel = body & (token >= v.velocity_offset) & (token < v.velocity_offset + v.num_velocity)
    is_note = (token >= v.note_offset) & (token < v.note_offset + v.num_pitches)
    tie_note, body_note = in_tie & is_note, body & is_note
    pedal_on, pedal_off = token == v.pedal_on, body & (token == v.pedal_off)
    body_pedal_on = body & pedal_on
    t, b, p = token - v.time_offset, token - v.velocity_offset, token - v.note_offset

    key = jnp.arange(v.num_pitches, dtype=jnp.int32)[None, :] == p[:, None]
    note_on = tie_note | (body_note & (s.velocity > 0))
    note_off = body_note & (s.velocity == 0)
    sounding = (s.sounding | (key & note_on[:, None])) & ~(key & note_off[:, None])

    section = jnp.where(in_tie & (token == v.tie_end), BODY, s.section)
    section = jnp.where(in_tie & (pedal_on | is_note), TIE, section)
    section = jnp.where(body & (token == v.eos), DONE, section)

    new_velocity = is_vel & (b > 0)
    phase = jnp.where(is_time, PHASE_OFFS, s.phase)
    phase = jnp.where(pedal_off, PHASE_PEDAL_OFF, phase)
    phase = jnp.where(body_pedal_on, PHASE_PEDAL_ON, phase)
    phase = jnp.where(new_velocity | (body_note & (s.velocity > 0)), PHASE_ONS, phase)

    last_pitch = jnp.where(is_time | (new_velocity & (s.phase < PHASE_ONS)), -1, s.last_pitch)
    last_pitch = jnp.where(is_note & (in_tie | body), p, last_pitch)

    return GrammarState(
        section=section,
        time=jnp.where(is_time, t, s.time),
        velocity=jnp.where(is_vel, b, s.velocity),
        sounding=sounding,
        pedal=jnp.where(pedal_on & (in_tie | body), True, jnp.where(pedal_off, False, s.pedal)),
        event_since_time=jnp.where(
            is_time, False, s.event_since_time | body_note | body_pedal_on | pedal_off
        ),
        pending_note=jnp.where(is_vel, True, jnp.where(body_note, False, s.pending_note)),
        phase=phase,
        last_pitch=last_pitch,
        num_steps=s.num_steps,
    )


@functools.partial(jax.jit, static_argnames=("canonical",))
def sequence_legal(
    tokens: Int[Array, "B L"],
    num_steps: int | Int[Array, " B"],
    canonical: bool = True,
) -> Bool[Array, "B L"]:
    """Teacher-forced check: whether each token is legal after its prefix (no budget).

    Useful to verify loader output against the grammar and to measure how often an
    unconstrained model breaks it.
    """
    batch = tokens.shape[0]

    def step(state: GrammarState, token: Int[Array, " B"]):
        ok = jnp.take_along_axis(legal_mask(state, canonical=canonical), token[:, None], 1)
        return advance(state, token), ok[:, 0]

    _, legal = jax.lax.scan(step, init_state(batch, num_steps), tokens.T.astype(jnp.int32))
    return legal.T
