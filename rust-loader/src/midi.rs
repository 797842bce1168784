//! Standard MIDI files -> `Performance` (key-release notes + sustain spans), all in seconds.
//!
//! Decisions, chosen for a piano transcription target:
//! - All tracks and channels are merged, and notes are keyed by pitch only: the target is the
//!   keyboard, where one key cannot sound twice, and Disklavier/MAESTRO files spread one piano
//!   over several channels. A note-off on any channel closes the sounding note of that pitch.
//! - A note-on of a pitch that is already sounding ends the previous note at that time (MAESTRO
//!   has such overlaps). When that re-strike and a note-off share a tick, the note-off is taken
//!   to be the release of the replaced note, whatever order the file lists them in, so the
//!   result does not depend on how a sequencer ordered simultaneous events.
//! - Two note-ons of one pitch at the same tick (doubled tracks) make one note with the larger
//!   velocity; the extra note-off at that tick is absorbed the same way.
//! - A note-on and its note-off at the same tick with nothing else sounding give a zero-length
//!   note (`onset == offset`); it is kept because the key was struck.
//! - Sustain is CC64 on any channel, `>= 64` down; zero-length pedal spans are dropped because
//!   they sustain nothing.
//! - Times are exact: ticks and tempi are accumulated as integers and divided once per event.

use std::cmp::Ordering;
use std::path::Path;

use midly::{Format, MetaMessage, MidiMessage, Timing, TrackEventKind};

use crate::error::{LoaderError, Result};
use crate::performance::{Note, Pedal, Performance};

const SUSTAIN_CONTROLLER: u8 = 64;
/// 120 beats per minute, the SMF default before the first Set Tempo.
const DEFAULT_TEMPO_US: u64 = 500_000;

/// Reads and parses a MIDI file; errors name the file.
pub fn read_midi(path: &Path) -> Result<Performance> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LoaderError::NotFound(path.to_path_buf())
        } else {
            LoaderError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    parse_midi(&bytes).map_err(|message| LoaderError::Midi {
        path: path.to_path_buf(),
        message,
    })
}

/// The events that matter for a performance, with their absolute tick.
#[derive(Debug, Clone, Copy)]
enum Event {
    NoteOn { key: u8, velocity: u8 },
    NoteOff { key: u8 },
    Sustain { down: bool },
    Tempo { micros_per_beat: u32 },
}

/// Converts absolute ticks to seconds as `numerator / denominator`, both integers, so long
/// files with many tempo changes accumulate no rounding error.
struct Clock {
    /// Microsecond-ticks (metrical) or second-fractions (timecode) per tick, per unit below.
    kind: ClockKind,
    /// Accumulated numerator at `segment_tick` (metrical only).
    segment_numerator: u128,
    segment_tick: u64,
    micros_per_beat: u64,
}

enum ClockKind {
    /// seconds = sum(delta_ticks * micros_per_beat) / (ppq * 1e6)
    Metrical { denominator: u128 },
    /// seconds = ticks * numerator / denominator (tempo events do not apply)
    Timecode { numerator: u128, denominator: u128 },
}

impl Clock {
    fn new(timing: Timing) -> std::result::Result<Self, String> {
        let kind = match timing {
            Timing::Metrical(ppq) => {
                let ppq = ppq.as_int();
                if ppq == 0 {
                    return Err("header declares 0 ticks per beat".to_string());
                }
                ClockKind::Metrical {
                    denominator: u128::from(ppq) * 1_000_000,
                }
            }
            Timing::Timecode(fps, ticks_per_frame) => {
                if ticks_per_frame == 0 {
                    return Err("header declares 0 ticks per SMPTE frame".to_string());
                }
                let per_frame = u128::from(ticks_per_frame);
                let (numerator, denominator) = match fps {
                    // 29.97 drop-frame is exactly 30000/1001 frames per second.
                    midly::Fps::Fps29 => (1001, 30_000 * per_frame),
                    other => (1, u128::from(other.as_int()) * per_frame),
                };
                ClockKind::Timecode {
                    numerator,
                    denominator,
                }
            }
        };
        Ok(Clock {
            kind,
            segment_numerator: 0,
            segment_tick: 0,
            micros_per_beat: DEFAULT_TEMPO_US,
        })
    }

    fn numerator_at(&self, tick: u64) -> u128 {
        match self.kind {
            ClockKind::Metrical { .. } => {
                self.segment_numerator
                    + u128::from(tick - self.segment_tick) * u128::from(self.micros_per_beat)
            }
            ClockKind::Timecode { numerator, .. } => u128::from(tick) * numerator,
        }
    }

    /// Seconds at `tick`; ticks must be queried in non-decreasing order.
    fn seconds(&self, tick: u64) -> f64 {
        let denominator = match self.kind {
            ClockKind::Metrical { denominator } | ClockKind::Timecode { denominator, .. } => {
                denominator
            }
        };
        let numerator = self.numerator_at(tick);
        // Whole seconds and the remainder separately keep full f64 precision on long files.
        (numerator / denominator) as f64 + (numerator % denominator) as f64 / denominator as f64
    }

    fn set_tempo(&mut self, tick: u64, micros_per_beat: u32) {
        if let ClockKind::Metrical { .. } = self.kind {
            self.segment_numerator = self.numerator_at(tick);
            self.segment_tick = tick;
            self.micros_per_beat = u64::from(micros_per_beat);
        }
    }
}

/// A sounding key.
#[derive(Debug, Clone, Copy)]
struct Open {
    onset_tick: u64,
    onset: f64,
    velocity: u8,
    /// Note-offs still to ignore at `onset_tick` (see the module notes on same-tick events).
    absorb: u32,
}

/// Parses a Standard MIDI File (format 0 or 1, metrical or SMPTE timing).
///
/// Returns notes sorted by (onset, pitch) and sustain spans sorted by onset. Never panics on
/// malformed input; tracks that break off mid-way keep the events read so far, as common
/// MIDI readers do.
pub fn parse_midi(bytes: &[u8]) -> std::result::Result<Performance, String> {
    // midly is not our code: a panic inside it must become a parse error, not a dead loader
    // thread. Our own code below stays outside, so the fuzz tests still catch our bugs.
    let (timing, events, last_tick) = std::panic::catch_unwind(|| read_events(bytes))
        .map_err(|_| "MIDI parser failed on malformed data".to_string())??;
    let mut clock = Clock::new(timing)?;

    let mut open: [Option<Open>; 128] = [None; 128];
    let mut notes = Vec::new();
    let mut pedals = Vec::new();
    let mut pedal_down: Option<f64> = None;

    for &(tick, event) in &events {
        match event {
            Event::Tempo { micros_per_beat } => clock.set_tempo(tick, micros_per_beat),
            Event::NoteOn { key, velocity } => {
                let now = clock.seconds(tick);
                let slot = &mut open[usize::from(key)];
                match slot {
                    Some(sounding) if sounding.onset_tick == tick => {
                        sounding.velocity = sounding.velocity.max(velocity);
                        sounding.absorb += 1;
                    }
                    Some(sounding) => {
                        notes.push(Note {
                            onset: sounding.onset,
                            offset: now,
                            pitch: key,
                            velocity: sounding.velocity,
                        });
                        *slot = Some(Open {
                            onset_tick: tick,
                            onset: now,
                            velocity,
                            absorb: 1,
                        });
                    }
                    None => {
                        *slot = Some(Open {
                            onset_tick: tick,
                            onset: now,
                            velocity,
                            absorb: 0,
                        });
                    }
                }
            }
            Event::NoteOff { key } => {
                let slot = &mut open[usize::from(key)];
                if let Some(sounding) = slot {
                    if sounding.onset_tick == tick && sounding.absorb > 0 {
                        sounding.absorb -= 1;
                    } else {
                        notes.push(Note {
                            onset: sounding.onset,
                            offset: clock.seconds(tick),
                            pitch: key,
                            velocity: sounding.velocity,
                        });
                        *slot = None;
                    }
                }
            }
            Event::Sustain { down } => match (down, pedal_down) {
                (true, None) => pedal_down = Some(clock.seconds(tick)),
                (false, Some(onset)) => {
                    let offset = clock.seconds(tick);
                    if offset > onset {
                        pedals.push(Pedal { onset, offset });
                    }
                    pedal_down = None;
                }
                _ => {}
            },
        }
    }

    let end = clock.seconds(last_tick);
    for (pitch, slot) in (0u8..).zip(open.iter()) {
        if let Some(sounding) = slot {
            notes.push(Note {
                onset: sounding.onset,
                offset: end,
                pitch,
                velocity: sounding.velocity,
            });
        }
    }
    if let Some(onset) = pedal_down {
        if end > onset {
            pedals.push(Pedal { onset, offset: end });
        }
    }

    notes.sort_by(note_order);
    Ok(Performance { notes, pedals })
}

/// Header timing, the performance-relevant events of all tracks (stably sorted by tick) and the
/// tick of the last event of any kind.
type Events = (Timing, Vec<(u64, Event)>, u64);

fn read_events(bytes: &[u8]) -> std::result::Result<Events, String> {
    check_smpte_division(bytes)?;
    let (header, tracks) =
        midly::parse(bytes).map_err(|e| format!("not a readable MIDI file: {e}"))?;
    if header.format == Format::Sequential {
        return Err(
            "format 2 (independent sequential tracks) is not supported; expected format 0 or 1"
                .to_string(),
        );
    }
    let mut events: Vec<(u64, Event)> = Vec::new();
    let mut last_tick = 0u64;
    for track in tracks {
        let track = track.map_err(|e| format!("unreadable track: {e}"))?;
        let mut tick = 0u64;
        for event in track {
            let event = event.map_err(|e| format!("unreadable event: {e}"))?;
            tick = tick.saturating_add(u64::from(event.delta.as_int()));
            last_tick = last_tick.max(tick);
            if let Some(kind) = classify(event.kind) {
                events.push((tick, kind));
            }
        }
    }
    // Stable: simultaneous events keep track order, then file order.
    events.sort_by_key(|&(tick, _)| tick);
    Ok((header.timing, events, last_tick))
}

/// midly 0.5 negates the SMPTE frame-rate byte as an `i8`, which overflows (a panic in debug
/// builds) for 0x80; reject that header before midly sees it. Finds the header chunk the way
/// midly does: first chunk of the file, or of the `data` chunk of an RMID (RIFF) wrapper,
/// skipping unknown chunks.
fn check_smpte_division(bytes: &[u8]) -> std::result::Result<(), String> {
    let mut raw = if bytes.starts_with(b"RIFF") {
        rmid_data(bytes).unwrap_or(&[])
    } else {
        bytes
    };
    while raw.len() >= 8 {
        let id = &raw[..4];
        let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        raw = &raw[8..];
        let data = &raw[..len.min(raw.len())];
        raw = &raw[data.len()..];
        match id {
            b"MThd" if data.len() >= 6 && data[4] == 0x80 => {
                return Err("invalid SMPTE frame rate in the header".to_string())
            }
            b"MThd" | b"MTrk" => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

/// The `data` chunk of an RMID file (little-endian RIFF chunks, odd sizes padded).
fn rmid_data(bytes: &[u8]) -> Option<&[u8]> {
    let riff_len = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
    let riff = &bytes[8..];
    let riff = &riff[..riff_len.min(riff.len())];
    if riff.get(..4)? != b"RMID" {
        return None;
    }
    let mut raw = &riff[4..];
    while raw.len() >= 8 {
        let id = &raw[..4];
        let len = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        raw = &raw[8..];
        let data = &raw[..len.min(raw.len())];
        raw = &raw[data.len()..];
        if len % 2 == 1 && !raw.is_empty() {
            raw = &raw[1..];
        }
        if id == b"data" {
            return Some(data);
        }
    }
    None
}

fn note_order(a: &Note, b: &Note) -> Ordering {
    a.onset
        .total_cmp(&b.onset)
        .then(a.pitch.cmp(&b.pitch))
        .then(a.offset.total_cmp(&b.offset))
}

fn classify(kind: TrackEventKind<'_>) -> Option<Event> {
    match kind {
        TrackEventKind::Midi { message, .. } => match message {
            MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => Some(Event::NoteOn {
                key: key.as_int(),
                velocity: vel.as_int(),
            }),
            MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                Some(Event::NoteOff { key: key.as_int() })
            }
            MidiMessage::Controller { controller, value }
                if controller.as_int() == SUSTAIN_CONTROLLER =>
            {
                Some(Event::Sustain {
                    down: value.as_int() >= 64,
                })
            }
            _ => None,
        },
        TrackEventKind::Meta(MetaMessage::Tempo(micros_per_beat)) => Some(Event::Tempo {
            micros_per_beat: micros_per_beat.as_int(),
        }),
        _ => None,
    }
}

/// Extends each note to the end of the sustain span that is down at its key release, cut short
/// where the same pitch is struck again. This is the sustain rule of the MAESTRO /
/// Onsets-and-Frames metrics and frame targets.
///
/// A pedal span covers `[onset, offset)`: a key released exactly when the pedal goes down is
/// sustained, one released exactly when it comes up is not. Notes keep their input order and
/// never get shorter than their key-release duration.
pub fn apply_pedal(notes: &[Note], pedals: &[Pedal]) -> Vec<Note> {
    let spans = merged_spans(pedals);

    // Onsets per pitch, sorted, to find the next strike of the same key.
    let mut onsets: Vec<Vec<f64>> = vec![Vec::new(); 128];
    for note in notes {
        onsets[usize::from(note.pitch & 0x7f)].push(note.onset);
    }
    for list in &mut onsets {
        list.sort_by(f64::total_cmp);
    }

    notes
        .iter()
        .map(|note| {
            let release = note.offset;
            let held_until = spans
                .partition_point(|span| span.onset <= release)
                .checked_sub(1)
                .map(|i| spans[i])
                .filter(|span| release < span.offset)
                .map(|span| span.offset);
            let Some(pedal_end) = held_until else {
                return *note;
            };
            let same_pitch = &onsets[usize::from(note.pitch & 0x7f)];
            let first = same_pitch.partition_point(|&onset| onset < release);
            let restrike = same_pitch[first..]
                .iter()
                .copied()
                .find(|&onset| onset > note.onset);
            let offset = match restrike {
                Some(onset) if onset < pedal_end => onset,
                _ => pedal_end,
            };
            Note { offset, ..*note }
        })
        .collect()
}

/// Sorted, non-overlapping copy of the pedal spans (callers may pass unsorted or overlapping
/// spans from other sources).
fn merged_spans(pedals: &[Pedal]) -> Vec<Pedal> {
    let mut sorted: Vec<Pedal> = pedals
        .iter()
        .copied()
        .filter(|p| p.offset > p.onset)
        .collect();
    sorted.sort_by(|a, b| a.onset.total_cmp(&b.onset));
    let mut merged: Vec<Pedal> = Vec::with_capacity(sorted.len());
    for span in sorted {
        match merged.last_mut() {
            Some(last) if span.onset <= last.offset => last.offset = last.offset.max(span.offset),
            _ => merged.push(span),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use midly::num::{u15, u24, u28, u4, u7};
    use midly::{Fps, Header, Smf, TrackEvent};

    const EPS: f64 = 1e-9;

    /// One event at an absolute tick; converted to deltas by `smf`.
    #[derive(Clone, Copy)]
    enum E {
        On(u8, u8, u8),
        Off(u8, u8),
        Cc(u8, u8, u8),
        Tempo(u32),
    }

    fn kind(e: E) -> TrackEventKind<'static> {
        let midi = |channel: u8, message| TrackEventKind::Midi {
            channel: u4::new(channel),
            message,
        };
        match e {
            E::On(ch, key, vel) => midi(
                ch,
                MidiMessage::NoteOn {
                    key: u7::new(key),
                    vel: u7::new(vel),
                },
            ),
            E::Off(ch, key) => midi(
                ch,
                MidiMessage::NoteOff {
                    key: u7::new(key),
                    vel: u7::new(64),
                },
            ),
            E::Cc(ch, controller, value) => midi(
                ch,
                MidiMessage::Controller {
                    controller: u7::new(controller),
                    value: u7::new(value),
                },
            ),
            E::Tempo(us) => TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us))),
        }
    }

    /// Builds a file; each track's events must be in tick order. `end` = End of Track tick.
    fn smf(timing: Timing, tracks: &[(&[(u64, E)], u64)]) -> Vec<u8> {
        let format = if tracks.len() == 1 {
            Format::SingleTrack
        } else {
            Format::Parallel
        };
        let mut file = Smf::new(Header::new(format, timing));
        for (events, end) in tracks {
            let mut track = Vec::new();
            let mut tick = 0;
            for &(at, e) in events.iter() {
                track.push(TrackEvent {
                    delta: u28::new((at - tick) as u32),
                    kind: kind(e),
                });
                tick = at;
            }
            track.push(TrackEvent {
                delta: u28::new((end - tick) as u32),
                kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
            });
            file.tracks.push(track);
        }
        let mut bytes = Vec::new();
        file.write_std(&mut bytes).unwrap();
        bytes
    }

    fn ppq(n: u16) -> Timing {
        Timing::Metrical(u15::new(n))
    }

    fn assert_notes(actual: &[Note], expected: &[(f64, f64, u8, u8)]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?}");
        for (a, &(onset, offset, pitch, velocity)) in actual.iter().zip(expected) {
            assert!(
                (a.onset - onset).abs() < EPS
                    && (a.offset - offset).abs() < EPS
                    && a.pitch == pitch
                    && a.velocity == velocity,
                "got {a:?}, expected {:?}",
                (onset, offset, pitch, velocity)
            );
        }
    }

    fn assert_pedals(actual: &[Pedal], expected: &[(f64, f64)]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?}");
        for (a, &(onset, offset)) in actual.iter().zip(expected) {
            assert!(
                (a.onset - onset).abs() < EPS && (a.offset - offset).abs() < EPS,
                "got {a:?}, expected {:?}",
                (onset, offset)
            );
        }
    }

    #[test]
    fn tempo_changes_mid_file_in_any_track() {
        // 480 ppq; 120 bpm until tick 960, then 240 bpm (set in the conductor track), then
        // 60 bpm from tick 1920 (set in the note track).
        let conductor: &[(u64, E)] = &[(0, E::Tempo(500_000)), (960, E::Tempo(250_000))];
        let music: &[(u64, E)] = &[
            (0, E::On(0, 60, 80)),
            (480, E::Off(0, 60)),
            (960, E::On(0, 62, 70)),
            (1440, E::Off(0, 62)),
            (1920, E::Tempo(1_000_000)),
            (2400, E::On(0, 64, 60)),
            (2880, E::Off(0, 64)),
        ];
        let bytes = smf(ppq(480), &[(conductor, 960), (music, 2880)]);
        let perf = parse_midi(&bytes).unwrap();
        // tick 1920 = 1.0 + 960 * 0.25/480 = 1.5 s; tick 2400 = 1.5 + 480/480 * 1.0 = 2.5 s.
        assert_notes(
            &perf.notes,
            &[(0.0, 0.5, 60, 80), (1.0, 1.25, 62, 70), (2.5, 3.5, 64, 60)],
        );
    }

    #[test]
    fn tracks_and_channels_merge_sorted_by_onset_then_pitch() {
        let right: &[(u64, E)] = &[
            (0, E::On(0, 72, 90)),
            (100, E::On(0, 76, 91)),
            (200, E::Off(0, 72)),
            (200, E::Off(0, 76)),
        ];
        // The left hand on another channel; its note-off for 48 comes on yet another channel.
        let left: &[(u64, E)] = &[
            (0, E::On(1, 48, 50)),
            (100, E::On(1, 43, 51)),
            (300, E::Off(2, 48)),
            (300, E::Off(1, 43)),
        ];
        let bytes = smf(ppq(100), &[(right, 200), (left, 300)]);
        let perf = parse_midi(&bytes).unwrap();
        assert_notes(
            &perf.notes,
            &[
                (0.0, 1.5, 48, 50),
                (0.0, 1.0, 72, 90),
                (0.5, 1.5, 43, 51),
                (0.5, 1.0, 76, 91),
            ],
        );
        assert!(perf.pedals.is_empty());
    }

    #[test]
    fn running_status_and_velocity_zero_note_offs() {
        // Hand-written format 0 file, 96 ppq, default tempo (1 tick = 1/192 s):
        // note-on C4 then running-status note-ons with velocity 0 / new notes.
        let track: &[u8] = &[
            0x00, 0x90, 60, 100, // t=0   on 60
            0x00, 64, 90, // t=0   running status: on 64
            0x60, 60, 0, // t=96  running status: on 60 vel 0 = off
            0x00, 64, 0, // t=96  off 64
            0x30, 67, 30, // t=144 on 67
            0x30, 0x80, 67, 0, // t=192 explicit note-off
            0x00, 0xFF, 0x2F, 0x00,
        ];
        let mut bytes = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk".to_vec();
        bytes.extend_from_slice(&(track.len() as u32).to_be_bytes());
        bytes.extend_from_slice(track);
        let perf = parse_midi(&bytes).unwrap();
        assert_notes(
            &perf.notes,
            &[(0.0, 0.5, 60, 100), (0.0, 0.5, 64, 90), (0.75, 1.0, 67, 30)],
        );
        // The writer side uses running status too: round-trip a velocity-0 note-off.
        let events: &[(u64, E)] = &[(0, E::On(3, 21, 5)), (10, E::On(3, 21, 0))];
        let perf = parse_midi(&smf(ppq(10), &[(events, 10)])).unwrap();
        assert_notes(&perf.notes, &[(0.0, 0.5, 21, 5)]);
    }

    #[test]
    fn restrike_of_a_sounding_pitch_ends_the_previous_note() {
        // MAESTRO-style overlap: on, on, off, off of one pitch.
        let events: &[(u64, E)] = &[
            (0, E::On(0, 60, 40)),
            (100, E::On(0, 60, 50)),
            (200, E::Off(0, 60)),
            (300, E::Off(0, 60)),
        ];
        let perf = parse_midi(&smf(ppq(100), &[(events, 300)])).unwrap();
        assert_notes(&perf.notes, &[(0.0, 0.5, 60, 40), (0.5, 1.0, 60, 50)]);
    }

    #[test]
    fn simultaneous_release_and_restrike_give_the_same_notes_in_either_order() {
        let off_first: &[(u64, E)] = &[
            (0, E::On(0, 60, 40)),
            (100, E::Off(0, 60)),
            (100, E::On(0, 60, 50)),
            (200, E::Off(0, 60)),
        ];
        let on_first: &[(u64, E)] = &[
            (0, E::On(0, 60, 40)),
            (100, E::On(0, 60, 50)),
            (100, E::Off(0, 60)),
            (200, E::Off(0, 60)),
        ];
        let expected = [(0.0, 0.5, 60, 40), (0.5, 1.0, 60, 50)];
        for events in [off_first, on_first] {
            let perf = parse_midi(&smf(ppq(100), &[(events, 200)])).unwrap();
            assert_notes(&perf.notes, &expected);
        }
        // Across tracks: the re-strike in track 0, the release of the old note in track 1.
        let a: &[(u64, E)] = &[(100, E::On(0, 60, 50)), (200, E::Off(0, 60))];
        let b: &[(u64, E)] = &[(0, E::On(0, 60, 40)), (100, E::Off(0, 60))];
        let perf = parse_midi(&smf(ppq(100), &[(a, 200), (b, 100)])).unwrap();
        assert_notes(&perf.notes, &expected);
    }

    #[test]
    fn doubled_note_on_at_one_tick_is_one_note_and_zero_length_notes_are_kept() {
        let events: &[(u64, E)] = &[
            (0, E::On(0, 60, 40)),
            (0, E::On(1, 60, 70)),
            (100, E::Off(1, 60)),
            (100, E::Off(0, 60)),
            (150, E::On(0, 62, 33)),
            (150, E::Off(0, 62)),
        ];
        let perf = parse_midi(&smf(ppq(100), &[(events, 200)])).unwrap();
        assert_notes(&perf.notes, &[(0.0, 0.5, 60, 70), (0.75, 0.75, 62, 33)]);
    }

    #[test]
    fn unreleased_notes_end_at_the_last_event_of_any_track() {
        let notes: &[(u64, E)] = &[(0, E::On(0, 60, 40)), (50, E::On(0, 0, 1))];
        let other: &[(u64, E)] = &[(10, E::On(0, 127, 127)), (20, E::Off(0, 127))];
        // The second track's End of Track at tick 400 is the last event.
        let perf = parse_midi(&smf(ppq(100), &[(notes, 60), (other, 400)])).unwrap();
        assert_notes(
            &perf.notes,
            &[(0.0, 2.0, 60, 40), (0.05, 0.1, 127, 127), (0.25, 2.0, 0, 1)],
        );
    }

    #[test]
    fn sustain_spans_from_cc64_on_any_channel() {
        let events: &[(u64, E)] = &[
            (0, E::Cc(0, 64, 127)),
            (50, E::Cc(0, 64, 100)), // still down: no split
            (60, E::Cc(0, 67, 127)), // soft pedal: ignored
            (100, E::Cc(3, 64, 0)),  // up, on another channel
            (110, E::Cc(0, 64, 63)), // up while up
            (200, E::Cc(0, 64, 64)), // threshold counts as down
            (300, E::Cc(0, 64, 20)),
            (300, E::Cc(0, 64, 90)), // re-pressed at the release tick
            (350, E::Cc(0, 64, 0)),
            (360, E::Cc(0, 64, 127)), // zero-length: dropped
            (360, E::Cc(0, 64, 0)),
            (400, E::Cc(1, 64, 127)), // never released
        ];
        let perf = parse_midi(&smf(ppq(100), &[(events, 500)])).unwrap();
        assert_pedals(
            &perf.pedals,
            &[(0.0, 0.5), (1.0, 1.5), (1.5, 1.75), (2.0, 2.5)],
        );
        assert!(perf.notes.is_empty());
    }

    #[test]
    fn smpte_timing_is_ticks_per_second_and_ignores_tempo() {
        // 25 fps x 40 ticks = 1000 ticks per second.
        let events: &[(u64, E)] = &[
            (0, E::Tempo(250_000)),
            (250, E::On(0, 60, 64)),
            (1750, E::Off(0, 60)),
        ];
        let perf = parse_midi(&smf(Timing::Timecode(Fps::Fps25, 40), &[(events, 2000)])).unwrap();
        assert_notes(&perf.notes, &[(0.25, 1.75, 60, 64)]);
        // 29.97 fps is 30000/1001 frames per second.
        let events: &[(u64, E)] = &[(300, E::On(0, 60, 64)), (3000, E::Off(0, 60))];
        let perf = parse_midi(&smf(Timing::Timecode(Fps::Fps29, 10), &[(events, 3000)])).unwrap();
        assert_notes(
            &perf.notes,
            &[(
                300.0 * 1001.0 / 300_000.0,
                3000.0 * 1001.0 / 300_000.0,
                60,
                64,
            )],
        );
    }

    #[test]
    fn long_files_keep_exact_times() {
        // 2^20 ticks at an awkward tempo and ppq: the integer clock gives the exact quotient.
        let events: &[(u64, E)] = &[
            (0, E::Tempo(123_457)),
            (1 << 20, E::On(0, 60, 64)),
            ((1 << 20) + 7, E::Off(0, 60)),
        ];
        let perf = parse_midi(&smf(ppq(997), &[(events, (1 << 20) + 7)])).unwrap();
        let seconds = |t: u64| (t as f64) * 123_457.0 / (997.0 * 1e6);
        assert_notes(
            &perf.notes,
            &[(seconds(1 << 20), seconds((1 << 20) + 7), 60, 64)],
        );
    }

    #[test]
    fn rejects_format_2_zero_ppq_and_garbage() {
        let track = [TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        }];
        let mut bytes = Vec::new();
        midly::write_std(
            &Header::new(Format::Sequential, ppq(96)),
            [&track[..], &track[..]],
            &mut bytes,
        )
        .unwrap();
        let err = parse_midi(&bytes).unwrap_err();
        assert!(err.contains("format 2"), "{err}");

        let err = parse_midi(&smf(ppq(0), &[(&[], 0)])).unwrap_err();
        assert!(err.contains("0 ticks per beat"), "{err}");

        assert!(parse_midi(b"").is_err());
        assert!(parse_midi(b"RIFF\x04\x00\x00\x00WAVE").is_err());
        assert!(parse_midi(b"hello, this is not a MIDI file").is_err());
    }

    /// Wraps an SMF in an RMID (RIFF) container with a leading odd-sized chunk.
    fn rmid(smf: &[u8]) -> Vec<u8> {
        let mut body = b"RMIDLIST".to_vec();
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(b"abc\0"); // 3 bytes + pad
        body.extend_from_slice(b"data");
        body.extend_from_slice(&(smf.len() as u32).to_le_bytes());
        body.extend_from_slice(smf);
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&body);
        file
    }

    #[test]
    fn smpte_frame_rate_byte_0x80_is_an_error_not_a_panic() {
        // Found by tests/fuzz_midi.rs: midly overflows negating this byte.
        let events: &[(u64, E)] = &[(0, E::On(0, 60, 64)), (96, E::Off(0, 60))];
        let mut bytes = smf(ppq(96), &[(events, 96)]);
        bytes[12] = 0x80;
        let err = parse_midi(&bytes).unwrap_err();
        assert!(err.contains("invalid SMPTE frame rate"), "{err}");
        let err = parse_midi(&rmid(&bytes)).unwrap_err();
        assert!(err.contains("invalid SMPTE frame rate"), "{err}");
        // Other SMPTE bytes that are not a frame rate are ordinary midly errors.
        bytes[12] = 0x81;
        assert!(parse_midi(&bytes).is_err());
        // The same file with its proper header, bare and wrapped, parses.
        let good = smf(ppq(96), &[(events, 96)]);
        assert_notes(&parse_midi(&good).unwrap().notes, &[(0.0, 0.5, 60, 64)]);
        assert_notes(
            &parse_midi(&rmid(&good)).unwrap().notes,
            &[(0.0, 0.5, 60, 64)],
        );
    }

    #[test]
    fn read_midi_reports_missing_and_bad_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.mid");
        assert!(matches!(read_midi(&missing), Err(LoaderError::NotFound(p)) if p == missing));

        let bad = dir.path().join("bad.midi");
        std::fs::write(&bad, b"MThd garbage").unwrap();
        match read_midi(&bad) {
            Err(err @ LoaderError::Midi { .. }) => {
                assert!(err.to_string().contains("bad.midi"), "{err}")
            }
            other => panic!("expected a MIDI error, got {other:?}"),
        }

        let good = dir.path().join("good.mid");
        let events: &[(u64, E)] = &[(0, E::On(0, 60, 64)), (96, E::Off(0, 60))];
        std::fs::write(&good, smf(ppq(96), &[(events, 96)])).unwrap();
        assert_notes(&read_midi(&good).unwrap().notes, &[(0.0, 0.5, 60, 64)]);
    }

    fn note(onset: f64, offset: f64, pitch: u8) -> Note {
        Note {
            onset,
            offset,
            pitch,
            velocity: 64,
        }
    }

    fn pedal(onset: f64, offset: f64) -> Pedal {
        Pedal { onset, offset }
    }

    #[test]
    fn pedal_extends_released_notes_until_pedal_up_or_restrike() {
        let notes = [
            note(0.0, 0.5, 60),  // released under the pedal -> until 2.0
            note(0.2, 0.4, 62),  // released under the pedal, struck again at 1.0
            note(1.0, 1.2, 62),  // -> until 2.0
            note(0.1, 2.5, 64),  // released after pedal up: unchanged
            note(3.0, 3.5, 65),  // no pedal: unchanged
            note(4.0, 4.25, 67), // released exactly at pedal down: sustained
            note(4.5, 5.0, 69),  // released exactly at pedal up: not extended
        ];
        let pedals = [pedal(0.3, 2.0), pedal(4.25, 5.0)];
        let out = apply_pedal(&notes, &pedals);
        let expected = [
            note(0.0, 2.0, 60),
            note(0.2, 1.0, 62),
            note(1.0, 2.0, 62),
            note(0.1, 2.5, 64),
            note(3.0, 3.5, 65),
            note(4.0, 5.0, 67),
            note(4.5, 5.0, 69),
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn pedal_handles_unsorted_overlapping_spans_and_keeps_input_order() {
        let notes = [note(1.0, 1.5, 70), note(0.0, 0.1, 70)];
        // Overlapping spans merge into [0.05, 3.0).
        let pedals = [pedal(1.0, 3.0), pedal(0.05, 1.2)];
        let out = apply_pedal(&notes, &pedals);
        assert_eq!(out, vec![note(1.0, 3.0, 70), note(0.0, 1.0, 70)]);
        assert!(apply_pedal(&[], &pedals).is_empty());
        assert_eq!(apply_pedal(&notes, &[]), notes.to_vec());
    }

    #[test]
    fn parsed_pedal_and_notes_compose_with_apply_pedal() {
        let events: &[(u64, E)] = &[
            (0, E::On(0, 60, 50)),
            (10, E::Cc(0, 64, 127)),
            (50, E::Off(0, 60)),
            (100, E::On(0, 60, 60)),
            (120, E::Off(0, 60)),
            (200, E::Cc(0, 64, 0)),
        ];
        let perf = parse_midi(&smf(ppq(100), &[(events, 200)])).unwrap();
        let sustained = apply_pedal(&perf.notes, &perf.pedals);
        assert_notes(&sustained, &[(0.0, 0.5, 60, 50), (0.5, 1.0, 60, 60)]);
    }
}
