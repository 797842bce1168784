//! The token vocabulary: the one definition of the contract between the loader (which encodes
//! performances into tokens) and Python (which decodes model output). Python reads every
//! constant here through the extension module; nothing is re-typed on the other side.
//!
//! Layout (ids): PAD, SOS, EOS, TIE_END, PEDAL_ON, PEDAL_OFF, TIME(0..MAX_SEGMENT_STEPS),
//! VELOCITY(0..=NUM_VELOCITY_BINS) with 0 = note-off, NOTE(MIN_PITCH..=MAX_PITCH).
//! The grammar of one segment's sequence is documented in docs/tokens.md.

use crate::performance::{Note, Pedal};

pub const SAMPLE_RATE: u32 = 16_000;
/// Time tokens are absolute within a segment, 10 ms apart.
pub const STEPS_PER_SECOND: u32 = 100;
pub const SAMPLES_PER_STEP: u32 = SAMPLE_RATE / STEPS_PER_SECOND;
/// Longest segment the vocabulary can describe: 5.12 s.
pub const MAX_SEGMENT_STEPS: u32 = 512;
/// Velocity bins for sounding notes; bin 0 is the note-off marker.
pub const NUM_VELOCITY_BINS: u32 = 32;
pub const MIN_PITCH: u8 = 21;
pub const MAX_PITCH: u8 = 108;
pub const NUM_PITCHES: u32 = (MAX_PITCH - MIN_PITCH) as u32 + 1;

pub const PAD: i32 = 0;
pub const SOS: i32 = 1;
pub const EOS: i32 = 2;
pub const TIE_END: i32 = 3;
pub const PEDAL_ON: i32 = 4;
pub const PEDAL_OFF: i32 = 5;
pub const TIME_OFFSET: i32 = 6;
pub const VELOCITY_OFFSET: i32 = TIME_OFFSET + MAX_SEGMENT_STEPS as i32;
pub const NOTE_OFFSET: i32 = VELOCITY_OFFSET + NUM_VELOCITY_BINS as i32 + 1;
pub const VOCAB_SIZE: i32 = NOTE_OFFSET + NUM_PITCHES as i32;

/// A token as a value; `id()` and `from_id()` are the only mapping to integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    Pad,
    Sos,
    Eos,
    TieEnd,
    PedalOn,
    PedalOff,
    Time(u32),
    Velocity(u32),
    Note(u8),
}

impl Token {
    pub fn id(self) -> i32 {
        match self {
            Token::Pad => PAD,
            Token::Sos => SOS,
            Token::Eos => EOS,
            Token::TieEnd => TIE_END,
            Token::PedalOn => PEDAL_ON,
            Token::PedalOff => PEDAL_OFF,
            Token::Time(t) => TIME_OFFSET + t as i32,
            Token::Velocity(v) => VELOCITY_OFFSET + v as i32,
            Token::Note(p) => NOTE_OFFSET + (p - MIN_PITCH) as i32,
        }
    }

    pub fn from_id(id: i32) -> Option<Token> {
        Some(match id {
            PAD => Token::Pad,
            SOS => Token::Sos,
            EOS => Token::Eos,
            TIE_END => Token::TieEnd,
            PEDAL_ON => Token::PedalOn,
            PEDAL_OFF => Token::PedalOff,
            i if (TIME_OFFSET..VELOCITY_OFFSET).contains(&i) => {
                Token::Time((i - TIME_OFFSET) as u32)
            }
            i if (VELOCITY_OFFSET..NOTE_OFFSET).contains(&i) => {
                Token::Velocity((i - VELOCITY_OFFSET) as u32)
            }
            i if (NOTE_OFFSET..VOCAB_SIZE).contains(&i) => {
                Token::Note(MIN_PITCH + (i - NOTE_OFFSET) as u8)
            }
            _ => return None,
        })
    }

    /// Human-readable name, as used in the golden file: `TIME(12)`, `VELOCITY(20)`, `NOTE(60)`.
    pub fn name(self) -> String {
        match self {
            Token::Pad => "PAD".into(),
            Token::Sos => "SOS".into(),
            Token::Eos => "EOS".into(),
            Token::TieEnd => "TIE_END".into(),
            Token::PedalOn => "PEDAL_ON".into(),
            Token::PedalOff => "PEDAL_OFF".into(),
            Token::Time(t) => format!("TIME({t})"),
            Token::Velocity(v) => format!("VELOCITY({v})"),
            Token::Note(p) => format!("NOTE({p})"),
        }
    }

    pub fn parse(name: &str) -> Option<Token> {
        let simple = match name {
            "PAD" => Some(Token::Pad),
            "SOS" => Some(Token::Sos),
            "EOS" => Some(Token::Eos),
            "TIE_END" => Some(Token::TieEnd),
            "PEDAL_ON" => Some(Token::PedalOn),
            "PEDAL_OFF" => Some(Token::PedalOff),
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        let (kind, rest) = name.split_once('(')?;
        let value: u32 = rest.strip_suffix(')')?.parse().ok()?;
        let token = match kind {
            "TIME" if value < MAX_SEGMENT_STEPS => Token::Time(value),
            "VELOCITY" if value <= NUM_VELOCITY_BINS => Token::Velocity(value),
            "NOTE" if (MIN_PITCH as u32..=MAX_PITCH as u32).contains(&value) => {
                Token::Note(value as u8)
            }
            _ => return None,
        };
        Some(token)
    }
}

/// MIDI velocity (1..=127) to its bin (1..=NUM_VELOCITY_BINS); 0 stays 0 (note-off).
pub fn velocity_to_bin(velocity: u8) -> u32 {
    if velocity == 0 {
        return 0;
    }
    let v = velocity.min(127) as u32;
    1 + (v - 1) * NUM_VELOCITY_BINS / 127
}

/// The MIDI velocity a bin decodes to: the middle of the velocities that map to it.
pub fn bin_to_velocity(bin: u32) -> u8 {
    if bin == 0 {
        return 0;
    }
    let members: Vec<u32> = (1..=127u32)
        .filter(|&v| velocity_to_bin(v as u8) == bin)
        .collect();
    match (members.first(), members.last()) {
        (Some(lo), Some(hi)) => ((lo + hi) / 2) as u8,
        _ => 0,
    }
}

/// Seconds to the global 10 ms grid; segments start on this grid, so every time in a segment
/// is an integer number of steps.
pub fn quantize(seconds: f64) -> i64 {
    (seconds * STEPS_PER_SECOND as f64).round() as i64
}

/// A note on the time grid, as the tokenizer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GridNote {
    pub onset: i64,
    pub offset: i64,
    pub pitch: u8,
    pub velocity: u8,
}

/// A sustain-pedal span on the time grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GridPedal {
    pub onset: i64,
    pub offset: i64,
}

/// The canonical form a performance takes on the grid; decoding tokens gives back exactly
/// this (with velocities at bin centres). Rules: pitches outside the piano and zero velocities
/// are dropped; a note lasts at least one step; a re-struck pitch ends the sounding note at the
/// new onset (of two onsets on one step, the longer note stays); pedal spans shorter than a
/// step vanish and touching or overlapping spans merge.
pub fn normalize(notes: &[Note], pedals: &[Pedal]) -> (Vec<GridNote>, Vec<GridPedal>) {
    let mut grid: Vec<GridNote> = notes
        .iter()
        .filter(|n| (MIN_PITCH..=MAX_PITCH).contains(&n.pitch) && n.velocity > 0)
        .filter(|n| n.onset.is_finite() && n.offset.is_finite())
        .map(|n| {
            let onset = quantize(n.onset);
            GridNote {
                onset,
                offset: quantize(n.offset).max(onset + 1),
                pitch: n.pitch,
                velocity: n.velocity.min(127),
            }
        })
        .collect();
    grid.sort_by_key(|n| (n.pitch, n.onset, n.offset));
    let mut kept: Vec<GridNote> = Vec::with_capacity(grid.len());
    for note in grid {
        if let Some(prev) = kept.last_mut() {
            if prev.pitch == note.pitch && note.onset < prev.offset {
                if note.onset == prev.onset {
                    kept.pop();
                } else {
                    prev.offset = note.onset;
                }
            }
        }
        kept.push(note);
    }
    kept.sort_by_key(|n| (n.onset, n.pitch));

    let mut spans: Vec<GridPedal> = pedals
        .iter()
        .filter(|p| p.onset.is_finite() && p.offset.is_finite())
        .map(|p| GridPedal {
            onset: quantize(p.onset),
            offset: quantize(p.offset),
        })
        .filter(|p| p.offset > p.onset)
        .collect();
    spans.sort();
    let mut merged: Vec<GridPedal> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.onset <= last.offset => last.offset = last.offset.max(span.offset),
            _ => merged.push(span),
        }
    }
    (kept, merged)
}

/// Events at one step, in the order the grammar fixes: note-offs, pedal, note-ons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    NoteOff(u8),
    PedalOff,
    PedalOn,
    NoteOn(u8, u32),
}

/// Tokens of the segment `[start, start + steps)` (grid steps) of a normalized performance,
/// ending in EOS. A note or pedal sounding at `start` that began earlier is named in the tie
/// section; one still sounding at the end simply has no off event in this segment.
pub fn encode_segment(
    notes: &[GridNote],
    pedals: &[GridPedal],
    start: i64,
    steps: u32,
) -> Vec<Token> {
    let end = start + steps.min(MAX_SEGMENT_STEPS) as i64;
    let mut tokens = Vec::new();

    if pedals.iter().any(|p| p.onset < start && p.offset > start) {
        tokens.push(Token::PedalOn);
    }
    let mut tied: Vec<u8> = notes
        .iter()
        .filter(|n| n.onset < start && n.offset > start)
        .map(|n| n.pitch)
        .collect();
    tied.sort_unstable();
    tokens.extend(tied.into_iter().map(Token::Note));
    tokens.push(Token::TieEnd);

    let mut events: Vec<(i64, Event)> = Vec::new();
    for n in notes {
        if n.onset >= start && n.onset < end {
            events.push((n.onset, Event::NoteOn(n.pitch, velocity_to_bin(n.velocity))));
        }
        if n.offset > start && n.offset < end {
            events.push((n.offset, Event::NoteOff(n.pitch)));
        }
    }
    for p in pedals {
        if p.onset >= start && p.onset < end {
            events.push((p.onset, Event::PedalOn));
        }
        if p.offset > start && p.offset < end {
            events.push((p.offset, Event::PedalOff));
        }
    }
    events.sort_by_key(|&(time, event)| {
        let rank = match event {
            Event::NoteOff(p) => (0, p),
            Event::PedalOff => (1, 0),
            Event::PedalOn => (2, 0),
            Event::NoteOn(p, _) => (3, p),
        };
        (time, rank)
    });

    let mut current_time: Option<i64> = None;
    let mut current_velocity: Option<u32> = None;
    for (time, event) in events {
        if current_time != Some(time) {
            tokens.push(Token::Time((time - start) as u32));
            current_time = Some(time);
        }
        match event {
            Event::NoteOff(pitch) => {
                if current_velocity != Some(0) {
                    tokens.push(Token::Velocity(0));
                    current_velocity = Some(0);
                }
                tokens.push(Token::Note(pitch));
            }
            Event::PedalOff => tokens.push(Token::PedalOff),
            Event::PedalOn => tokens.push(Token::PedalOn),
            Event::NoteOn(pitch, bin) => {
                if current_velocity != Some(bin) {
                    tokens.push(Token::Velocity(bin));
                    current_velocity = Some(bin);
                }
                tokens.push(Token::Note(pitch));
            }
        }
    }
    tokens.push(Token::Eos);
    tokens
}

/// Convenience for callers holding seconds: normalize, then encode the segment starting at
/// `start_seconds` (rounded to the grid) and lasting `steps` steps.
pub fn encode(notes: &[Note], pedals: &[Pedal], start_seconds: f64, steps: u32) -> Vec<i32> {
    let (grid_notes, grid_pedals) = normalize(notes, pedals);
    encode_segment(&grid_notes, &grid_pedals, quantize(start_seconds), steps)
        .into_iter()
        .map(Token::id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(onset: f64, offset: f64, pitch: u8, velocity: u8) -> Note {
        Note {
            onset,
            offset,
            pitch,
            velocity,
        }
    }

    fn names(ids: &[i32]) -> Vec<String> {
        ids.iter()
            .map(|&i| Token::from_id(i).unwrap().name())
            .collect()
    }

    #[test]
    fn ids_round_trip_and_cover_the_vocabulary() {
        for id in 0..VOCAB_SIZE {
            let token = Token::from_id(id).expect("every id in range is a token");
            assert_eq!(token.id(), id);
            assert_eq!(Token::parse(&token.name()), Some(token));
        }
        assert_eq!(Token::from_id(VOCAB_SIZE), None);
        assert_eq!(Token::from_id(-1), None);
        assert_eq!(VOCAB_SIZE, 6 + 512 + 33 + 88);
    }

    #[test]
    fn velocity_bins_are_monotone_and_centred() {
        assert_eq!(velocity_to_bin(1), 1);
        assert_eq!(velocity_to_bin(127), NUM_VELOCITY_BINS);
        let mut last = 0;
        for v in 1..=127u8 {
            let bin = velocity_to_bin(v);
            assert!(bin >= last && bin <= last + 1);
            last = bin;
            assert_eq!(velocity_to_bin(bin_to_velocity(bin)), bin);
        }
    }

    #[test]
    fn chord_with_pedal_hand_checked() {
        let notes = [note(0.10, 0.50, 60, 80), note(0.10, 0.30, 64, 80)];
        let pedals = [Pedal {
            onset: 0.2,
            offset: 0.6,
        }];
        let bin = velocity_to_bin(80);
        let expected = vec![
            "TIE_END".to_string(),
            "TIME(10)".into(),
            format!("VELOCITY({bin})"),
            "NOTE(60)".into(),
            "NOTE(64)".into(),
            "TIME(20)".into(),
            "PEDAL_ON".into(),
            "TIME(30)".into(),
            "VELOCITY(0)".into(),
            "NOTE(64)".into(),
            "TIME(50)".into(),
            "NOTE(60)".into(),
            "TIME(60)".into(),
            "PEDAL_OFF".into(),
            "EOS".into(),
        ];
        assert_eq!(names(&encode(&notes, &pedals, 0.0, 100)), expected);
    }

    #[test]
    fn ties_name_sounding_notes_and_pedal() {
        let notes = [note(0.5, 1.5, 72, 100), note(0.9, 1.0, 40, 30)];
        let pedals = [Pedal {
            onset: 0.0,
            offset: 1.2,
        }];
        let expected = vec![
            "PEDAL_ON",
            "NOTE(72)",
            "TIE_END",
            "TIME(20)",
            "PEDAL_OFF",
            "TIME(50)",
            "VELOCITY(0)",
            "NOTE(72)",
            "EOS",
        ];
        assert_eq!(names(&encode(&notes, &pedals, 1.0, 100)), expected);
    }

    #[test]
    fn restrike_ends_previous_note_and_offs_come_first() {
        let notes = [note(0.0, 0.5, 60, 64), note(0.2, 0.4, 60, 100)];
        let (grid, _) = normalize(&notes, &[]);
        assert_eq!(grid.len(), 2);
        assert_eq!(grid[0].offset, 20);
        let tokens = names(&encode(&notes, &[], 0.0, 100));
        let b64 = velocity_to_bin(64);
        let b100 = velocity_to_bin(100);
        let expected = vec![
            "TIE_END".to_string(),
            "TIME(0)".into(),
            format!("VELOCITY({b64})"),
            "NOTE(60)".into(),
            "TIME(20)".into(),
            "VELOCITY(0)".into(),
            "NOTE(60)".into(),
            format!("VELOCITY({b100})"),
            "NOTE(60)".into(),
            "TIME(40)".into(),
            "VELOCITY(0)".into(),
            "NOTE(60)".into(),
            "EOS".into(),
        ];
        assert_eq!(tokens, expected);
    }

    #[test]
    fn normalize_drops_out_of_range_and_merges_pedal() {
        let notes = [
            note(0.0, 0.001, 60, 50),
            note(0.0, 1.0, 20, 50),
            note(0.0, 1.0, 61, 0),
        ];
        let pedals = [
            Pedal {
                onset: 0.0,
                offset: 0.5,
            },
            Pedal {
                onset: 0.5,
                offset: 0.8,
            },
            Pedal {
                onset: 0.9,
                offset: 0.902,
            },
        ];
        let (grid, spans) = normalize(&notes, &pedals);
        assert_eq!(
            grid,
            vec![GridNote {
                onset: 0,
                offset: 1,
                pitch: 60,
                velocity: 50
            }]
        );
        assert_eq!(
            spans,
            vec![GridPedal {
                onset: 0,
                offset: 80
            }]
        );
    }

    #[test]
    fn empty_segment_is_tie_end_eos() {
        assert_eq!(names(&encode(&[], &[], 3.0, 200)), vec!["TIE_END", "EOS"]);
    }

    /// The golden cases shared with pytest (tests/data/tokens_golden.json).
    #[test]
    fn golden_file_matches_encoder() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/tokens_golden.json");
        let text = std::fs::read_to_string(&path).expect("golden file present");
        let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(golden["vocab_size"].as_i64(), Some(VOCAB_SIZE as i64));
        let cases = golden["cases"].as_array().unwrap();
        assert!(cases.len() >= 30);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let notes: Vec<Note> = case["notes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    note(
                        n[0].as_f64().unwrap(),
                        n[1].as_f64().unwrap(),
                        n[2].as_f64().unwrap() as u8,
                        n[3].as_f64().unwrap() as u8,
                    )
                })
                .collect();
            let pedals: Vec<Pedal> = case["pedals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| Pedal {
                    onset: p[0].as_f64().unwrap(),
                    offset: p[1].as_f64().unwrap(),
                })
                .collect();
            let start = case["start"].as_f64().unwrap();
            let steps = case["steps"].as_u64().unwrap() as u32;
            let want: Vec<String> = case["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                names(&encode(&notes, &pedals, start, steps)),
                want,
                "case {name}"
            );
            for t in &want {
                assert!(Token::parse(t).is_some(), "case {name}: bad name {t}");
            }
        }
    }
}
