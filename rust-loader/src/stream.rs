//! The batch stream: a deterministic, sharded, resumable sequence of training batches built on
//! background threads.
//!
//! Every batch is a pure function of (seed, shard, batch index): epoch `e` lays out a plan of
//! segment slots over all pieces (shuffled by the seed in `Random` mode, in order in
//! `Sequential` mode); shard `i` of `n` takes the slots `i, i + n, …`; batch `k` holds the
//! shard's items `k·B … (k+1)·B - 1`, counted across epochs. Worker `w` of `W` builds batches
//! `w, w + W, …` into its own bounded channel and the consumer reads the channels in turn, so
//! order never depends on timing and any batch index can be resumed directly.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::audio::{AudioDecoder, CachedAudio};
use crate::dataset::{self, PieceEntry, Split};
use crate::error::{LoaderError, Result};
use crate::midi::read_midi;
use crate::segment::{frame_targets, segment_tokens, PreparedPiece, SegmentSpec};
use crate::vocab;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Random segment offsets, slots shuffled each epoch: for training.
    Random,
    /// Each piece tiled from its start, in index order: for validation and evaluation.
    Sequential,
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub root: PathBuf,
    pub split: Split,
    pub spec: SegmentSpec,
    pub batch_size: usize,
    pub seed: u64,
    pub shard_index: usize,
    pub shard_count: usize,
    pub threads: usize,
    pub prefetch: usize,
    pub mode: Mode,
    /// None: endless; Some(e): stop after e epochs (the last batch may be smaller).
    pub epochs: Option<u64>,
    pub ffmpeg: PathBuf,
    pub cache_dir: PathBuf,
}

/// One usable piece of the split.
struct Piece {
    entry: PieceEntry,
    audio_path: PathBuf,
    prepared: PreparedPiece,
    /// Decoded once, by whichever worker needs it first; failures are remembered.
    audio: OnceLock<std::result::Result<CachedAudio, String>>,
}

/// What the stream has skipped and why; drained by Python into its logging.
#[derive(Debug, Default)]
pub struct Report {
    pub warnings: Vec<String>,
    pub skipped_files: usize,
    pub truncated_segments: usize,
}

/// The pieces of one split, shared by all workers.
pub struct Dataset {
    pieces: Vec<Piece>,
    decoder: AudioDecoder,
    bad_audio: Mutex<HashSet<usize>>,
    report: Mutex<Report>,
}

impl Dataset {
    /// Reads the index and every MIDI file of the split; files that are missing or unusable
    /// are skipped with a warning naming them. Fails only if nothing usable remains.
    pub fn open(root: &Path, split: Split, ffmpeg: &Path, cache_dir: &Path) -> Result<Self> {
        let decoder = AudioDecoder::new(ffmpeg, cache_dir)?;
        let entries: Vec<PieceEntry> = dataset::read_index(root)?
            .into_iter()
            .filter(|e| e.split == split)
            .collect();
        let mut report = Report::default();
        let mut pieces = Vec::with_capacity(entries.len());
        for entry in entries {
            let audio_path = dataset::resolve(root, &entry.audio_filename);
            let midi_path = dataset::resolve(root, &entry.midi_filename);
            let problem = if !audio_path.is_file() {
                Some(format!("audio file missing: {}", audio_path.display()))
            } else {
                match read_midi(&midi_path) {
                    Err(err) => Some(err.to_string()),
                    Ok(perf) => {
                        let prepared = PreparedPiece::new(&perf);
                        if prepared.grid_notes.is_empty() {
                            Some(format!("MIDI has no piano notes: {}", midi_path.display()))
                        } else {
                            pieces.push(Piece {
                                entry,
                                audio_path,
                                prepared,
                                audio: OnceLock::new(),
                            });
                            None
                        }
                    }
                }
            };
            if let Some(message) = problem {
                report.skipped_files += 1;
                report.warnings.push(format!("skipped: {message}"));
            }
        }
        if pieces.is_empty() {
            return Err(LoaderError::NoData(format!(
                "split '{}' under {} has no usable pieces ({} skipped{})",
                split.as_str(),
                root.display(),
                report.skipped_files,
                report
                    .warnings
                    .first()
                    .map(|w| format!("; first: {w}"))
                    .unwrap_or_default()
            )));
        }
        Ok(Self {
            pieces,
            decoder,
            bad_audio: Mutex::new(HashSet::new()),
            report: Mutex::new(report),
        })
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    pub fn entry(&self, index: usize) -> &PieceEntry {
        &self.pieces[index].entry
    }

    pub fn take_report(&self) -> Report {
        std::mem::take(&mut *self.report.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn warn(&self, message: String, truncated: bool) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if truncated {
            report.truncated_segments += 1;
        } else {
            report.skipped_files += 1;
            report.warnings.push(message);
        }
    }

    /// The decoded audio of a piece, or None if it cannot be decoded (warned once).
    fn audio(&self, index: usize) -> Option<&CachedAudio> {
        let piece = &self.pieces[index];
        let result = piece.audio.get_or_init(|| {
            self.decoder
                .ensure_cached(&piece.audio_path)
                .map_err(|e| e.to_string())
        });
        match result {
            Ok(audio) => Some(audio),
            Err(message) => {
                let first = self
                    .bad_audio
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(index);
                if first {
                    self.warn(format!("skipped: {message}"), false);
                }
                None
            }
        }
    }

    /// Segment slots per piece for one epoch: enough to cover its duration once.
    fn slots(&self, piece: usize, spec: &SegmentSpec) -> usize {
        let seconds = spec.samples as f64 / vocab::SAMPLE_RATE as f64;
        let duration = self.pieces[piece].entry.duration.max(0.0);
        ((duration / seconds).ceil() as usize).max(1)
    }
}

/// A batch as flat row-major buffers; shapes are given by the sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub size: usize,
    pub samples: usize,
    pub max_tokens: usize,
    pub frames: usize,
    pub audio: Vec<f32>,
    pub tokens: Vec<i32>,
    pub token_mask: Vec<bool>,
    pub onset: Vec<f32>,
    pub frame: Vec<f32>,
    pub offset: Vec<f32>,
    pub velocity: Vec<f32>,
    pub pedal: Vec<f32>,
    pub piece: Vec<i64>,
    pub start_sample: Vec<i64>,
    pub epoch: u64,
}

/// splitmix64: decorrelates the seeds of nearby (epoch, slot) pairs.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn rng_for(parts: &[u64]) -> ChaCha8Rng {
    let seed = parts.iter().fold(0x5EED_u64, |acc, &p| mix(acc ^ mix(p)));
    ChaCha8Rng::seed_from_u64(seed)
}

/// One epoch's slots: (piece, slot number within the piece).
type Plan = Vec<(usize, usize)>;

fn epoch_plan(data: &Dataset, cfg: &StreamConfig, epoch: u64) -> Plan {
    let mut plan: Plan = (0..data.len())
        .flat_map(|p| (0..data.slots(p, &cfg.spec)).map(move |s| (p, s)))
        .collect();
    if cfg.mode == Mode::Random {
        plan.shuffle(&mut rng_for(&[cfg.seed, epoch, 1]));
    }
    plan
}

/// The plan of every epoch is the same length; only its order changes.
struct Planner {
    data: Arc<Dataset>,
    cfg: StreamConfig,
    plan_len: usize,
    cached: Mutex<Option<(u64, Arc<Plan>)>>,
}

impl Planner {
    fn new(data: Arc<Dataset>, cfg: StreamConfig) -> Self {
        let plan_len = (0..data.len()).map(|p| data.slots(p, &cfg.spec)).sum();
        Self {
            data,
            cfg,
            plan_len,
            cached: Mutex::new(None),
        }
    }

    /// Items of this shard in one epoch.
    fn shard_items(&self) -> u64 {
        let (n, i) = (self.cfg.shard_count, self.cfg.shard_index);
        if self.plan_len <= i {
            0
        } else {
            ((self.plan_len - i).div_ceil(n)) as u64
        }
    }

    fn total_items(&self) -> Option<u64> {
        self.cfg.epochs.map(|e| e * self.shard_items())
    }

    fn plan(&self, epoch: u64) -> Arc<Plan> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((e, plan)) = cached.as_ref() {
            if *e == epoch {
                return plan.clone();
            }
        }
        let plan = Arc::new(epoch_plan(&self.data, &self.cfg, epoch));
        *cached = Some((epoch, plan.clone()));
        plan
    }

    /// (epoch, piece, start sample) of the shard's item `j`, before any substitution.
    fn item(&self, j: u64) -> (u64, usize, usize) {
        let per_epoch = self.shard_items();
        let epoch = j / per_epoch;
        let within = (j % per_epoch) as usize;
        let slot_index = self.cfg.shard_index + within * self.cfg.shard_count;
        let (piece, slot) = self.plan(epoch)[slot_index];
        let start = match self.cfg.mode {
            Mode::Sequential => slot * self.cfg.spec.samples,
            Mode::Random => self.random_start(piece, &[self.cfg.seed, epoch, slot_index as u64]),
        };
        (epoch, piece, start)
    }

    /// A grid-aligned random start within the piece's duration.
    fn random_start(&self, piece: usize, key: &[u64]) -> usize {
        let step = vocab::SAMPLES_PER_STEP as usize;
        let total =
            (self.data.pieces[piece].entry.duration.max(0.0) * vocab::SAMPLE_RATE as f64) as usize;
        let room_steps = total.saturating_sub(self.cfg.spec.samples) / step;
        rng_for(key).random_range(0..=room_steps) * step
    }

    /// Writes item `j` into row `row` of the batch, replacing an undecodable piece by another
    /// one chosen from the item's own seed, so the result does not depend on timing.
    fn fill(&self, j: u64, batch: &mut Batch, row: usize) -> Result<()> {
        let (epoch, mut piece, mut start) = self.item(j);
        let spec = &self.cfg.spec;
        let mut attempt = 0u64;
        let audio = loop {
            if let Some(audio) = self.data.audio(piece) {
                break audio;
            }
            attempt += 1;
            let bad = self
                .data
                .bad_audio
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            if bad >= self.data.len() {
                return Err(LoaderError::NoData(format!(
                    "none of the {} pieces of split '{}' has decodable audio (see warnings)",
                    self.data.len(),
                    self.cfg.split.as_str()
                )));
            }
            let key = [self.cfg.seed, epoch, j, attempt];
            piece = (mix(key.iter().fold(0, |a, &k| mix(a ^ k))) % self.data.len() as u64) as usize;
            start = self.random_start(piece, &key);
        };
        let samples = self
            .data
            .decoder
            .read_segment(audio, start as u64, spec.samples)?;
        batch.audio[row * spec.samples..(row + 1) * spec.samples].copy_from_slice(&samples);

        let prepared = &self.data.pieces[piece].prepared;
        let tok = &mut batch.tokens[row * spec.max_tokens..(row + 1) * spec.max_tokens];
        let (len, truncated) = segment_tokens(prepared, start, spec, tok);
        if truncated {
            self.data.warn(String::new(), true);
        }
        let mask = &mut batch.token_mask[row * spec.max_tokens..(row + 1) * spec.max_tokens];
        mask.iter_mut().enumerate().for_each(|(i, m)| *m = i < len);

        let targets = frame_targets(prepared, start, spec);
        let per = spec.frames() * vocab::NUM_PITCHES as usize;
        let range = row * per..(row + 1) * per;
        batch.onset[range.clone()].copy_from_slice(&targets.onset);
        batch.frame[range.clone()].copy_from_slice(&targets.frame);
        batch.offset[range.clone()].copy_from_slice(&targets.offset);
        batch.velocity[range].copy_from_slice(&targets.velocity);
        batch.pedal[row * spec.frames()..(row + 1) * spec.frames()].copy_from_slice(&targets.pedal);
        batch.piece[row] = piece as i64;
        batch.start_sample[row] = start as i64;
        Ok(())
    }

    /// Batch `k`, or None past the last epoch.
    fn batch(&self, k: u64) -> Result<Option<Batch>> {
        let b = self.cfg.batch_size as u64;
        let first = k * b;
        let end = match self.total_items() {
            Some(total) if first >= total => return Ok(None),
            Some(total) => (first + b).min(total),
            None => first + b,
        };
        let size = (end - first) as usize;
        let spec = &self.cfg.spec;
        let per = spec.frames() * vocab::NUM_PITCHES as usize;
        let mut batch = Batch {
            size,
            samples: spec.samples,
            max_tokens: spec.max_tokens,
            frames: spec.frames(),
            audio: vec![0.0; size * spec.samples],
            tokens: vec![vocab::PAD; size * spec.max_tokens],
            token_mask: vec![false; size * spec.max_tokens],
            onset: vec![0.0; size * per],
            frame: vec![0.0; size * per],
            offset: vec![0.0; size * per],
            velocity: vec![0.0; size * per],
            pedal: vec![0.0; size * spec.frames()],
            piece: vec![0; size],
            start_sample: vec![0; size],
            epoch: first / self.shard_items(),
        };
        for (row, j) in (first..end).enumerate() {
            self.fill(j, &mut batch, row)?;
        }
        Ok(Some(batch))
    }
}

type Message = Result<Option<Batch>>;

/// The running stream: workers started at some batch index, read in order.
pub struct Stream {
    planner: Arc<Planner>,
    receivers: Vec<Receiver<Message>>,
    workers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    position: u64,
    /// Position at which the current workers started: worker `w` serves `origin + w + W·i`.
    origin: u64,
    finished: bool,
}

impl Stream {
    pub fn new(data: Arc<Dataset>, cfg: StreamConfig, position: u64) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(LoaderError::InvalidArgument(
                "batch_size must be >= 1".into(),
            ));
        }
        if cfg.shard_count == 0 || cfg.shard_index >= cfg.shard_count {
            return Err(LoaderError::InvalidArgument(format!(
                "shard_index {} must be below shard_count {}",
                cfg.shard_index, cfg.shard_count
            )));
        }
        let planner = Arc::new(Planner::new(data, cfg));
        if planner.shard_items() == 0 {
            return Err(LoaderError::NoData(format!(
                "shard {} of {} gets no segments: the split has only {} segment slots",
                planner.cfg.shard_index, planner.cfg.shard_count, planner.plan_len
            )));
        }
        let mut stream = Self {
            planner,
            receivers: Vec::new(),
            workers: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            position,
            origin: position,
            finished: false,
        };
        stream.start();
        Ok(stream)
    }

    fn start(&mut self) {
        let threads = self.planner.cfg.threads.max(1);
        let capacity = (self.planner.cfg.prefetch / threads).max(1);
        self.stop = Arc::new(AtomicBool::new(false));
        self.origin = self.position;
        for w in 0..threads as u64 {
            let (tx, rx): (SyncSender<Message>, Receiver<Message>) = sync_channel(capacity);
            let planner = self.planner.clone();
            let stop = self.stop.clone();
            let first = self.position + w;
            let step = threads as u64;
            let handle = std::thread::Builder::new()
                .name(format!("harmonynet-loader-{w}"))
                .spawn(move || {
                    let mut k = first;
                    while !stop.load(Ordering::Relaxed) {
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            planner.batch(k)
                        }))
                        .unwrap_or_else(|panic| {
                            let what = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "unknown panic".into());
                            Err(LoaderError::NoData(format!("loader worker failed: {what}")))
                        });
                        let done = !matches!(result, Ok(Some(_)));
                        if tx.send(result).is_err() || done {
                            return;
                        }
                        k += step;
                    }
                })
                .expect("spawning a loader thread");
            self.receivers.push(rx);
            self.workers.push(handle);
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.receivers.clear();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }

    /// The next batch in order; None when a finite stream is exhausted.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Batch>> {
        if self.finished {
            return Ok(None);
        }
        let w = ((self.position - self.origin) % self.receivers.len() as u64) as usize;
        let message = self.receivers[w].recv().unwrap_or_else(|_| {
            Err(LoaderError::NoData(
                "loader worker stopped unexpectedly".into(),
            ))
        });
        match message {
            Ok(Some(batch)) => {
                self.position += 1;
                Ok(Some(batch))
            }
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(err) => {
                self.finished = true;
                Err(err)
            }
        }
    }

    /// Index of the next batch `next()` returns: all that is needed to resume exactly.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Restarts the workers at batch `position`.
    pub fn seek(&mut self, position: u64) {
        self.halt();
        self.position = position;
        self.finished = false;
        self.start();
    }

    /// Stops the workers; `next()` then returns None.
    pub fn close(&mut self) {
        self.halt();
        self.finished = true;
    }

    /// Batches in one epoch of this shard (the last may be partial).
    pub fn batches_per_epoch(&self) -> u64 {
        self.planner
            .shard_items()
            .div_ceil(self.planner.cfg.batch_size as u64)
    }

    pub fn dataset(&self) -> &Dataset {
        &self.planner.data
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.halt();
    }
}
