//! A performance as the loader sees it: notes with key-release offsets, and sustain-pedal spans.
//! Times in seconds from the start of the recording.

/// One key press. `offset` is the key release, not the end of the pedal-sustained sound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    pub onset: f64,
    pub offset: f64,
    pub pitch: u8,
    pub velocity: u8,
}

/// One span during which the sustain pedal (CC64 >= 64) is down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pedal {
    pub onset: f64,
    pub offset: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Performance {
    pub notes: Vec<Note>,
    pub pedals: Vec<Pedal>,
}
