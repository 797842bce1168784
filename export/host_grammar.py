"""The decoding grammar of harmonynet_jax.grammar for one sequence, in plain numpy.

This is what an app runs on the host between two `decode_step` calls: mask the logits with
`legal_mask`, take the argmax, `advance` the state. It mirrors harmonynet_jax.grammar rule for
rule (tests/test_export.py checks that both give the same mask on random legal sequences), and
is written with scalars and one [88] key vector so it ports line by line to Kotlin or Swift.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from harmonynet_jax.grammar import (
    BODY,
    DONE,
    PHASE_OFFS,
    PHASE_ONS,
    PHASE_PEDAL_OFF,
    PHASE_PEDAL_ON,
    TIE,
    TIE_FIRST,
)
from harmonynet_jax.tokens import VOCAB

_V = VOCAB
_PITCH = np.arange(_V.num_pitches)
_STEPS = np.arange(_V.num_time)
_BINS = np.arange(_V.num_velocity)


@dataclass(frozen=True)
class HostState:
    """One sequence's grammar state (the fields of harmonynet_jax.grammar.GrammarState)."""

    num_steps: int  # TIME(t) needs t < num_steps
    section: int = TIE_FIRST
    time: int = -1  # step of the last TIME
    velocity: int = -1  # current velocity bin, -1 while unset
    sounding: np.ndarray = field(default_factory=lambda: np.zeros(_V.num_pitches, bool))
    pedal: bool = False
    event_since_time: bool = False
    pending_note: bool = False  # a VELOCITY awaits its NOTE
    phase: int = PHASE_OFFS
    last_pitch: int = -1  # key index of the last tie note / note of this phase


def legal_mask(s: HostState, remaining: int | None = None, canonical: bool = True) -> np.ndarray:
    """Bool [V]: tokens legal next; `remaining` = positions left including this one."""
    budget = 1 << 30 if remaining is None else int(remaining)
    fits1, fits2, fits3 = budget >= 2, budget >= 3, budget >= 4

    in_tie = s.section <= TIE
    body = s.section == BODY
    has_time = s.time >= 0
    free = body and not s.pending_note
    in_step = free and has_time
    can_close = free and (not has_time or s.event_since_time)
    above = s.last_pitch < _PITCH

    off_ok = s.sounding.copy()
    on_ok = ~s.sounding
    if canonical:
        off_ok &= (s.phase == PHASE_OFFS and s.time > 0) & above
        on_ok &= (s.phase < PHASE_ONS) | above
    any_off, any_on = bool(off_ok.any()), bool(on_ok.any())

    vel = s.velocity
    body_note = (body and has_time) & (((vel == 0) & off_ok) | ((vel > 0) & on_ok))
    tie_note = in_tie & above
    notes = (tie_note & fits2) | (body_note & fits1)

    velocity_ok = in_step & np.where(_BINS == 0, any_off, any_on)
    if canonical:
        velocity_ok &= vel != _BINS
    velocity_ok &= fits2

    pedal_on = in_step and not s.pedal
    pedal_off = in_step and s.pedal
    if canonical:
        pedal_on = pedal_on and s.phase == PHASE_OFFS
        pedal_off = pedal_off and s.phase == PHASE_OFFS and s.time > 0
    pedal_on = (s.section == TIE_FIRST and fits2) or (pedal_on and fits1)
    pedal_off = pedal_off and fits1

    # TIME(t): later than the last, inside the segment, and the sequence must still be able to
    # close after it: one event then EOS, or VELOCITY + NOTE then EOS.
    sounding_any = bool(s.sounding.any())
    silent_any = bool((~s.sounding).any())
    direct_off = np.full(_STEPS.shape, vel == 0 and sounding_any)
    pedal_at = np.ones(_STEPS.shape, bool)
    if canonical:
        direct_off &= _STEPS > 0
        pedal_at = (not s.pedal) | (_STEPS > 0)
    single = pedal_at | direct_off | (vel > 0 and silent_any)
    via_velocity = silent_any | (sounding_any & ((_STEPS > 0) if canonical else True))
    time_ok = (
        can_close
        & (s.time < _STEPS)
        & (s.num_steps > _STEPS)
        & np.where(single, fits2, via_velocity & fits3)
    )

    mask = np.zeros(_V.size, bool)
    mask[_V.pad] = s.section == DONE
    mask[_V.eos] = can_close
    mask[_V.tie_end] = in_tie and fits1
    mask[_V.pedal_on] = pedal_on
    mask[_V.pedal_off] = pedal_off
    mask[_V.time_offset : _V.time_offset + _V.num_time] = time_ok
    mask[_V.velocity_offset : _V.velocity_offset + _V.num_velocity] = velocity_ok
    mask[_V.note_offset : _V.note_offset + _V.num_pitches] = notes
    return mask


def advance(s: HostState, token: int) -> HostState:
    """State after emitting `token` (assumed legal; DONE stays DONE)."""
    token = int(token)
    in_tie = s.section <= TIE
    body = s.section == BODY
    is_time = body and _V.time_offset <= token < _V.time_offset + _V.num_time
    is_vel = body and _V.velocity_offset <= token < _V.velocity_offset + _V.num_velocity
    is_note = _V.note_offset <= token < _V.note_offset + _V.num_pitches
    tie_note, body_note = in_tie and is_note, body and is_note
    pedal_on, pedal_off = token == _V.pedal_on, body and token == _V.pedal_off
    body_pedal_on = body and pedal_on
    t, b, p = token - _V.time_offset, token - _V.velocity_offset, token - _V.note_offset

    sounding = s.sounding.copy()
    if tie_note or (body_note and s.velocity > 0):
        sounding[p] = True
    elif body_note and s.velocity == 0:
        sounding[p] = False

    section = s.section
    if in_tie and token == _V.tie_end:
        section = BODY
    if in_tie and (pedal_on or is_note):
        section = TIE
    if body and token == _V.eos:
        section = DONE

    new_velocity = is_vel and b > 0
    phase = s.phase
    if is_time:
        phase = PHASE_OFFS
    if pedal_off:
        phase = PHASE_PEDAL_OFF
    if body_pedal_on:
        phase = PHASE_PEDAL_ON
    if new_velocity or (body_note and s.velocity > 0):
        phase = PHASE_ONS

    last_pitch = s.last_pitch
    if is_time or (new_velocity and s.phase < PHASE_ONS):
        last_pitch = -1
    if is_note and (in_tie or body):
        last_pitch = p

    pedal = s.pedal
    if pedal_on and (in_tie or body):
        pedal = True
    elif pedal_off:
        pedal = False

    return replace(
        s,
        section=section,
        time=t if is_time else s.time,
        velocity=b if is_vel else s.velocity,
        sounding=sounding,
        pedal=pedal,
        event_since_time=False
        if is_time
        else s.event_since_time or body_note or body_pedal_on or pedal_off,
        pending_note=True if is_vel else (False if body_note else s.pending_note),
        phase=phase,
        last_pitch=last_pitch,
    )
