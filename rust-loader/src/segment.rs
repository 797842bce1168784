//! One training example cut from a piece: the tokens of a segment and its Onsets & Frames
//! targets (onset / frame / offset / velocity per key, frame = pedal-extended sound).

use crate::midi::apply_pedal;
use crate::performance::{Note, Performance};
use crate::vocab::{self, GridNote, GridPedal, Token};

/// How examples are cut; validated once so workers never meet a bad shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSpec {
    pub samples: usize,
    pub frame_hop: usize,
    pub max_tokens: usize,
}

impl SegmentSpec {
    pub fn new(samples: usize, frame_hop: usize, max_tokens: usize) -> Result<Self, String> {
        let step = vocab::SAMPLES_PER_STEP as usize;
        if samples == 0 || !samples.is_multiple_of(step) {
            return Err(format!(
                "segment_samples must be a positive multiple of {step} (one 10 ms step), got {samples}"
            ));
        }
        if samples / step > vocab::MAX_SEGMENT_STEPS as usize {
            return Err(format!(
                "segment_samples {samples} exceeds the vocabulary's {} steps",
                vocab::MAX_SEGMENT_STEPS
            ));
        }
        if frame_hop == 0 || !samples.is_multiple_of(frame_hop) {
            return Err(format!(
                "frame_hop must divide segment_samples ({samples}), got {frame_hop}"
            ));
        }
        if max_tokens < 2 {
            return Err("max_tokens must be at least 2 (TIE_END, EOS)".into());
        }
        Ok(Self {
            samples,
            frame_hop,
            max_tokens,
        })
    }

    pub fn steps(&self) -> u32 {
        (self.samples / vocab::SAMPLES_PER_STEP as usize) as u32
    }

    pub fn frames(&self) -> usize {
        self.samples / self.frame_hop
    }
}

/// A piece prepared once for cutting many segments.
#[derive(Debug, Clone)]
pub struct PreparedPiece {
    pub grid_notes: Vec<GridNote>,
    pub grid_pedals: Vec<GridPedal>,
    /// Notes lasting as long as they sound (sustain applied), for frame targets.
    pub sounding: Vec<Note>,
    pub pedals: Vec<crate::performance::Pedal>,
}

impl PreparedPiece {
    pub fn new(performance: &Performance) -> Self {
        let (grid_notes, grid_pedals) = vocab::normalize(&performance.notes, &performance.pedals);
        let mut sounding = apply_pedal(&performance.notes, &performance.pedals);
        sounding.retain(|n| (vocab::MIN_PITCH..=vocab::MAX_PITCH).contains(&n.pitch));
        Self {
            grid_notes,
            grid_pedals,
            sounding,
            pedals: performance.pedals.clone(),
        }
    }
}

/// Tokens of the segment starting at `start_sample`, padded with PAD to `max_tokens`.
/// Returns the number of real tokens and whether the sequence had to be cut (then it has no EOS).
pub fn segment_tokens(
    piece: &PreparedPiece,
    start_sample: usize,
    spec: &SegmentSpec,
    out: &mut [i32],
) -> (usize, bool) {
    let start_step = (start_sample / vocab::SAMPLES_PER_STEP as usize) as i64;
    let tokens = vocab::encode_segment(
        &piece.grid_notes,
        &piece.grid_pedals,
        start_step,
        spec.steps(),
    );
    let len = tokens.len().min(spec.max_tokens);
    for (slot, token) in out.iter_mut().zip(tokens.iter().take(len)) {
        *slot = Token::id(*token);
    }
    out[len..].fill(vocab::PAD);
    (len, tokens.len() > spec.max_tokens)
}

/// Onsets & Frames targets, row-major [frames, 88] each (pedal: [frames]).
#[derive(Debug, Clone, PartialEq)]
pub struct FrameTargets {
    pub onset: Vec<f32>,
    pub frame: Vec<f32>,
    pub offset: Vec<f32>,
    pub velocity: Vec<f32>,
    pub pedal: Vec<f32>,
}

/// Frame `i` covers samples `[i * hop, (i + 1) * hop)` of the segment. A note marks its onset
/// frame (velocity / 127 there), the frame holding its last sounding sample as offset, and every
/// frame in between as sounding; sound that began before the segment has no onset mark.
pub fn frame_targets(
    piece: &PreparedPiece,
    start_sample: usize,
    spec: &SegmentSpec,
) -> FrameTargets {
    let frames = spec.frames();
    let keys = vocab::NUM_PITCHES as usize;
    let mut t = FrameTargets {
        onset: vec![0.0; frames * keys],
        frame: vec![0.0; frames * keys],
        offset: vec![0.0; frames * keys],
        velocity: vec![0.0; frames * keys],
        pedal: vec![0.0; frames],
    };
    let sr = vocab::SAMPLE_RATE as f64;
    let hop = spec.frame_hop as f64;
    let seg_start = start_sample as f64;
    let seg_end = seg_start + spec.samples as f64;
    // Sample index (relative to the segment) to frame index, for a sample inside the segment.
    let frame_of = |sample: f64| {
        ((sample - seg_start) / hop)
            .floor()
            .clamp(0.0, (frames - 1) as f64) as usize
    };

    for note in &piece.sounding {
        let on = note.onset * sr;
        let off = (note.offset * sr).max(on + 1.0);
        if off <= seg_start || on >= seg_end {
            continue;
        }
        let key = (note.pitch - vocab::MIN_PITCH) as usize;
        let first = frame_of(on.max(seg_start));
        let last = frame_of((off - 1.0).min(seg_end - 1.0));
        for f in first..=last {
            t.frame[f * keys + key] = 1.0;
        }
        if on >= seg_start {
            t.onset[first * keys + key] = 1.0;
            t.velocity[first * keys + key] = note.velocity as f32 / 127.0;
        }
        if off <= seg_end {
            t.offset[last * keys + key] = 1.0;
        }
    }
    for pedal in &piece.pedals {
        let on = pedal.onset * sr;
        let off = pedal.offset * sr;
        if off <= seg_start || on >= seg_end || off <= on {
            continue;
        }
        let first = frame_of(on.max(seg_start));
        let last = frame_of((off - 1.0).min(seg_end - 1.0));
        t.pedal[first..=last].fill(1.0);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::performance::Pedal;

    fn piece(notes: Vec<Note>, pedals: Vec<Pedal>) -> PreparedPiece {
        PreparedPiece::new(&Performance { notes, pedals })
    }

    #[test]
    fn spec_rejects_off_grid_and_too_long_segments() {
        assert!(SegmentSpec::new(32_000, 320, 256).is_ok());
        assert!(SegmentSpec::new(32_001, 1, 256).is_err());
        assert!(SegmentSpec::new(16_000 * 6, 320, 256).is_err());
        assert!(SegmentSpec::new(32_000, 333, 256).is_err());
        assert!(SegmentSpec::new(32_000, 320, 1).is_err());
    }

    #[test]
    fn tokens_are_padded_and_cut() {
        let notes: Vec<Note> = (0..50)
            .map(|i| Note {
                onset: i as f64 * 0.02,
                offset: i as f64 * 0.02 + 0.01,
                pitch: 60,
                velocity: 90,
            })
            .collect();
        let p = piece(notes, vec![]);
        let spec = SegmentSpec::new(16_000, 320, 400).unwrap();
        let mut out = vec![-1; 400];
        let (len, cut) = segment_tokens(&p, 0, &spec, &mut out);
        assert!(!cut);
        assert_eq!(out[len - 1], vocab::EOS);
        assert!(out[len..].iter().all(|&t| t == vocab::PAD));
        let small = SegmentSpec::new(16_000, 320, 10).unwrap();
        let mut short = vec![-1; 10];
        assert_eq!(segment_tokens(&p, 0, &small, &mut short), (10, true));
        assert!(!short.contains(&vocab::EOS));
    }

    #[test]
    fn frame_targets_follow_onsets_frames_conventions() {
        // Key held 0.10-0.30 s with the pedal down until 0.50 s: sounds until 0.50 s.
        let p = piece(
            vec![Note {
                onset: 0.10,
                offset: 0.30,
                pitch: 60,
                velocity: 127,
            }],
            vec![Pedal {
                onset: 0.0,
                offset: 0.5,
            }],
        );
        let spec = SegmentSpec::new(16_000, 320, 16).unwrap(); // 50 frames of 20 ms
        let t = frame_targets(&p, 0, &spec);
        let key = 60 - 21;
        let at = |v: &Vec<f32>, f: usize| v[f * 88 + key];
        assert_eq!(at(&t.onset, 5), 1.0);
        assert_eq!(at(&t.velocity, 5), 1.0);
        assert_eq!(t.onset.iter().sum::<f32>(), 1.0);
        assert_eq!(at(&t.frame, 4), 0.0);
        assert_eq!(at(&t.frame, 5), 1.0);
        assert_eq!(at(&t.frame, 24), 1.0);
        assert_eq!(at(&t.frame, 25), 0.0);
        assert_eq!(at(&t.offset, 24), 1.0);
        assert_eq!(t.pedal[24], 1.0);
        assert_eq!(t.pedal[25], 0.0);

        // The segment starting at 0.2 s sees the note sounding, with no onset mark.
        let later = frame_targets(&p, 3_200, &spec);
        assert_eq!(later.onset.iter().sum::<f32>(), 0.0);
        assert_eq!(at(&later.frame, 0), 1.0);
        assert_eq!(at(&later.offset, 14), 1.0);
    }
}
