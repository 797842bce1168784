//! Property tests for the MIDI reader: hostile bytes never panic, and random performances
//! written with midly come back with the same notes and pedal spans.
//!
//! Default case counts keep `cargo test` fast; set PROPTEST_CASES for a long run.

use harmonynet_loader::midi::parse_midi;
use harmonynet_loader::performance::{Note, Pedal};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Fps, Header, MetaMessage, MidiMessage, Timing, TrackEvent, TrackEventKind};
use proptest::prelude::*;

fn config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

/// A performance expressed in ticks, the way the generator lays it out.
#[derive(Debug, Clone)]
struct TickNote {
    onset: u64,
    /// `None`: never released, so it must end at the file's last event.
    offset: Option<u64>,
    pitch: u8,
    velocity: u8,
    channel: u8,
    track: usize,
    /// Release as NoteOn velocity 0 instead of NoteOff.
    zero_velocity_off: bool,
}

#[derive(Debug, Clone)]
struct TickPedal {
    onset: u64,
    offset: Option<u64>,
    channel: u8,
    track: usize,
    down_value: u8,
    up_value: u8,
    /// Extra "still down" messages strictly inside the span.
    repeats: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Song {
    timing: Timing,
    tracks: usize,
    /// (tick, microseconds per beat), distinct ticks, sorted.
    tempos: Vec<(u64, u32)>,
    notes: Vec<TickNote>,
    pedals: Vec<TickPedal>,
    /// Extra ticks after the last event before each track's End of Track.
    tails: Vec<u64>,
}

fn timing() -> impl Strategy<Value = Timing> {
    prop_oneof![
        4 => (1u16..=960).prop_map(|ppq| Timing::Metrical(u15::new(ppq))),
        1 => (
            prop::sample::select(vec![Fps::Fps24, Fps::Fps25, Fps::Fps29, Fps::Fps30]),
            1u8..=100
        )
            .prop_map(|(fps, sub)| Timing::Timecode(fps, sub)),
    ]
}

/// One pitch's notes: back-to-back allowed (gap 0), never overlapping, duration >= 1 tick.
fn pitch_notes(tracks: usize) -> impl Strategy<Value = Vec<TickNote>> {
    (
        0u8..=127,
        prop::collection::vec(
            (
                0u64..400,
                1u64..400,
                1u8..=127,
                0u8..16,
                0..tracks,
                any::<bool>(),
            ),
            1..6,
        ),
        any::<bool>(),
    )
        .prop_map(|(pitch, shapes, last_unterminated)| {
            let mut tick = 0;
            let count = shapes.len();
            shapes
                .into_iter()
                .enumerate()
                .map(|(i, (gap, duration, velocity, channel, track, zero_off))| {
                    let onset = tick + gap;
                    tick = onset + duration;
                    TickNote {
                        onset,
                        offset: (!(last_unterminated && i + 1 == count)).then_some(tick),
                        pitch,
                        velocity,
                        channel,
                        track,
                        zero_velocity_off: zero_off,
                    }
                })
                .collect()
        })
}

/// Pedal spans separated by at least one tick (a release and re-press at one tick would depend
/// on event order, which a file does not promise across tracks).
fn pedals(tracks: usize) -> impl Strategy<Value = Vec<TickPedal>> {
    (
        prop::collection::vec(
            (
                1u64..500,
                2u64..500,
                0u8..16,
                0..tracks,
                64u8..=127,
                0u8..64,
                prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            ),
            0..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(shapes, last_unterminated)| {
            let mut tick = 0;
            let count = shapes.len();
            shapes
                .into_iter()
                .enumerate()
                .map(|(i, (gap, duration, channel, track, down, up, repeats))| {
                    let onset = tick + gap;
                    tick = onset + duration;
                    let repeats = repeats
                        .iter()
                        .map(|r| onset + 1 + r.index(duration as usize - 1) as u64)
                        .collect();
                    TickPedal {
                        onset,
                        offset: (!(last_unterminated && i + 1 == count)).then_some(tick),
                        channel,
                        track,
                        down_value: down,
                        up_value: up,
                        repeats,
                    }
                })
                .collect()
        })
}

fn song() -> impl Strategy<Value = Song> {
    (1usize..4).prop_flat_map(|tracks| {
        (
            timing(),
            prop::collection::btree_map(0u64..3000, 1u32..=0xFF_FFFF, 0..6),
            prop::collection::vec(pitch_notes(tracks), 0..12),
            pedals(tracks),
            prop::collection::vec(0u64..300, tracks),
        )
            .prop_map(move |(timing, tempos, notes, pedals, tails)| {
                // One sequence per pitch: merge duplicates by keeping the first.
                let mut seen = [false; 128];
                let notes = notes
                    .into_iter()
                    .filter(|seq| !std::mem::replace(&mut seen[usize::from(seq[0].pitch)], true))
                    .flatten()
                    .collect();
                Song {
                    timing,
                    tracks,
                    tempos: tempos.into_iter().collect(),
                    notes,
                    pedals,
                    tails,
                }
            })
    })
}

fn midi(channel: u8, message: MidiMessage) -> TrackEventKind<'static> {
    TrackEventKind::Midi {
        channel: u4::new(channel),
        message,
    }
}

fn controller(channel: u8, value: u8) -> TrackEventKind<'static> {
    midi(
        channel,
        MidiMessage::Controller {
            controller: u7::new(64),
            value: u7::new(value),
        },
    )
}

fn write_song(song: &Song) -> Vec<u8> {
    let mut per_track: Vec<Vec<(u64, TrackEventKind<'static>)>> = vec![Vec::new(); song.tracks];
    for &(tick, tempo) in &song.tempos {
        per_track[0].push((
            tick,
            TrackEventKind::Meta(MetaMessage::Tempo(u24::new(tempo))),
        ));
    }
    for n in &song.notes {
        let on = MidiMessage::NoteOn {
            key: u7::new(n.pitch),
            vel: u7::new(n.velocity),
        };
        per_track[n.track].push((n.onset, midi(n.channel, on)));
        if let Some(offset) = n.offset {
            let off = if n.zero_velocity_off {
                MidiMessage::NoteOn {
                    key: u7::new(n.pitch),
                    vel: u7::new(0),
                }
            } else {
                MidiMessage::NoteOff {
                    key: u7::new(n.pitch),
                    vel: u7::new(n.velocity),
                }
            };
            per_track[n.track].push((offset, midi(n.channel, off)));
        }
    }
    for p in &song.pedals {
        per_track[p.track].push((p.onset, controller(p.channel, p.down_value)));
        for &tick in &p.repeats {
            per_track[(p.track + 1) % song.tracks].push((tick, controller(p.channel, 127)));
        }
        if let Some(offset) = p.offset {
            per_track[p.track].push((offset, controller(p.channel, p.up_value)));
        }
    }
    let tracks: Vec<Vec<TrackEvent<'static>>> = per_track
        .into_iter()
        .zip(&song.tails)
        .map(|(mut events, &tail)| {
            events.sort_by_key(|&(tick, _)| tick);
            let mut track = Vec::with_capacity(events.len() + 1);
            let mut now = 0;
            for (tick, kind) in events {
                track.push(TrackEvent {
                    delta: u28::new((tick - now) as u32),
                    kind,
                });
                now = tick;
            }
            track.push(TrackEvent {
                delta: u28::new(tail as u32),
                kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
            });
            track
        })
        .collect();
    let format = if song.tracks == 1 {
        Format::SingleTrack
    } else {
        Format::Parallel
    };
    let mut bytes = Vec::new();
    midly::write_std(&Header::new(format, song.timing), &tracks, &mut bytes).unwrap();
    bytes
}

/// Tick -> seconds by walking the tempo map in floating point: deliberately a different
/// method from the loader's exact integer clock.
fn seconds(song: &Song, tick: u64) -> f64 {
    match song.timing {
        Timing::Timecode(fps, sub) => {
            let fps = match fps {
                Fps::Fps29 => 30.0 / 1.001,
                other => f64::from(other.as_int()),
            };
            tick as f64 / (fps * f64::from(sub))
        }
        Timing::Metrical(ppq) => {
            let ppq = f64::from(ppq.as_int());
            let mut total = 0.0;
            let mut from = 0u64;
            let mut tempo = 500_000.0;
            for &(at, next) in &song.tempos {
                if at >= tick {
                    break;
                }
                total += (at - from) as f64 * tempo / (ppq * 1e6);
                from = at;
                tempo = f64::from(next);
            }
            total + (tick - from) as f64 * tempo / (ppq * 1e6)
        }
    }
}

fn last_tick(song: &Song) -> u64 {
    let mut ends = vec![0u64; song.tracks];
    let mut bump = |track: usize, tick: u64| ends[track] = ends[track].max(tick);
    for &(tick, _) in &song.tempos {
        bump(0, tick);
    }
    for n in &song.notes {
        bump(n.track, n.offset.unwrap_or(n.onset));
    }
    for p in &song.pedals {
        bump(p.track, p.offset.unwrap_or(p.onset));
        for &tick in &p.repeats {
            bump((p.track + 1) % song.tracks, tick);
        }
    }
    ends.iter()
        .zip(&song.tails)
        .map(|(e, t)| e + t)
        .max()
        .unwrap_or(0)
}

fn expected(song: &Song) -> (Vec<Note>, Vec<Pedal>) {
    let end = seconds(song, last_tick(song));
    let mut notes: Vec<Note> = song
        .notes
        .iter()
        .map(|n| Note {
            onset: seconds(song, n.onset),
            offset: n.offset.map_or(end, |t| seconds(song, t)),
            pitch: n.pitch,
            velocity: n.velocity,
        })
        .collect();
    notes.sort_by(|a, b| a.onset.total_cmp(&b.onset).then(a.pitch.cmp(&b.pitch)));
    let pedals = song
        .pedals
        .iter()
        .map(|p| Pedal {
            onset: seconds(song, p.onset),
            offset: p.offset.map_or(end, |t| seconds(song, t)),
        })
        .filter(|p| p.offset > p.onset)
        .collect();
    (notes, pedals)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6
}

/// Byte strings shaped like a MIDI file: a plausible header and track chunks of event-ish
/// bytes, so the fuzzing reaches event parsing instead of dying at the magic number.
fn midi_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let event = prop_oneof![
        (any::<u8>(), 0x80u8..=0xEF, any::<u8>(), any::<u8>()).prop_map(|(d, s, a, b)| vec![
            d & 0x7f,
            s,
            a & 0x7f,
            b & 0x7f
        ]),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(d, a, b)| vec![d, a, b]),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..6)
        )
            .prop_map(|(d, kind, data)| {
                let mut v = vec![d & 0x7f, 0xFF, kind, data.len() as u8];
                v.extend(data);
                v
            }),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    (
        0u16..4,
        0u16..4,
        any::<u16>(),
        prop::collection::vec(
            (
                prop::collection::vec(event, 0..24),
                any::<bool>(),
                any::<u8>(),
            ),
            0..4,
        ),
    )
        .prop_map(|(format, count, division, tracks)| {
            let mut bytes = b"MThd\0\0\0\x06".to_vec();
            bytes.extend(format.to_be_bytes());
            bytes.extend(count.to_be_bytes());
            bytes.extend(division.to_be_bytes());
            for (events, lie_about_length, fudge) in tracks {
                let body: Vec<u8> = events.concat();
                let len = if lie_about_length {
                    body.len() as u32 + u32::from(fudge)
                } else {
                    body.len() as u32
                };
                bytes.extend(b"MTrk");
                bytes.extend(len.to_be_bytes());
                bytes.extend(body);
            }
            bytes
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match m {
            Mutation::Flip(i, b) => bytes[i.index(len)] ^= b,
            Mutation::Set(i, b) => bytes[i.index(len)] = *b,
            Mutation::Insert(i, b) => bytes.insert(i.index(len + 1), *b),
            Mutation::Delete(i) => {
                bytes.remove(i.index(len));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
        }
    }
    bytes
}

/// A parse that succeeds must still produce a well-formed performance; a failure must be an
/// ordinary error, not a panic inside midly that `parse_midi` had to catch.
fn check_well_formed(bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = parse_midi(bytes);
    if let Err(message) = &parsed {
        prop_assert!(
            !message.contains("MIDI parser failed"),
            "midly panicked; add a pre-check in midi.rs"
        );
    }
    if let Ok(perf) = parsed {
        for n in &perf.notes {
            prop_assert!(n.onset.is_finite() && n.offset.is_finite() && n.onset >= 0.0);
            prop_assert!(n.offset >= n.onset, "{n:?}");
            prop_assert!(n.pitch <= 127 && (1..=127).contains(&n.velocity));
        }
        for w in perf.notes.windows(2) {
            prop_assert!((w[0].onset, w[0].pitch) <= (w[1].onset, w[1].pitch));
        }
        for p in &perf.pedals {
            prop_assert!(p.offset > p.onset && p.onset >= 0.0);
        }
        for w in perf.pedals.windows(2) {
            prop_assert!(w[0].offset <= w[1].onset);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_well_formed(&bytes)?;
        // Same bytes behind a valid header magic, to get past the first check.
        let mut framed = b"MThd\0\0\0\x06\0\x01\0\x01\x01\xe0MTrk".to_vec();
        framed.extend((bytes.len() as u32).to_be_bytes());
        framed.extend(&bytes);
        check_well_formed(&framed)?;
    }

    #[test]
    fn midi_shaped_bytes_never_panic(bytes in midi_like_bytes()) {
        check_well_formed(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn mutated_valid_files_never_panic(
        song in song(),
        mutations in prop::collection::vec(mutation(), 1..10),
    ) {
        let bytes = mutate(write_song(&song), &mutations);
        check_well_formed(&bytes)?;
    }

    #[test]
    fn written_performances_parse_back(song in song()) {
        let bytes = write_song(&song);
        let perf = parse_midi(&bytes).map_err(TestCaseError::fail)?;
        let (notes, pedals) = expected(&song);
        prop_assert_eq!(perf.notes.len(), notes.len(), "{:?}", perf.notes);
        for (got, want) in perf.notes.iter().zip(&notes) {
            prop_assert!(
                close(got.onset, want.onset)
                    && close(got.offset, want.offset)
                    && got.pitch == want.pitch
                    && got.velocity == want.velocity,
                "got {:?}, want {:?}", got, want
            );
        }
        prop_assert_eq!(perf.pedals.len(), pedals.len(), "{:?}", perf.pedals);
        for (got, want) in perf.pedals.iter().zip(&pedals) {
            prop_assert!(
                close(got.onset, want.onset) && close(got.offset, want.offset),
                "got {:?}, want {:?}", got, want
            );
        }
    }
}
