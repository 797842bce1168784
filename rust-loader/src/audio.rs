//! Audio decoding through an ffmpeg subprocess to f32 mono 16 kHz, with a content-keyed disk
//! cache so training reads random segments without decoding whole files again.
//!
//! Cache layout under `cache_dir`:
//! - `<key>.f32`: raw little-endian f32 samples; `key` = blake3 of the decoder tag and the
//!   blake3 of the source bytes, so renamed or copied files share one entry and a change of the
//!   decode command (bump `DECODER_TAG`) never serves stale audio.
//! - `by-path/<hash of path>`: the source's size, mtime and content hash, so unchanged big
//!   files are not re-hashed on every run.
//!
//! Every write goes to a unique temporary file in the same directory and is renamed into
//! place, so concurrent decoders (threads or processes) never see partial files; they may
//! decode the same file twice, and the last rename wins with identical bytes.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{LoaderError, Result};

pub const SAMPLE_RATE: u32 = 16_000;

/// Part of every cache key: change it whenever the ffmpeg command or sample format changes.
const DECODER_TAG: &str = "harmonynet-audio-v1 f32le mono 16000 ffmpeg-swr-default";

/// Long enough for hours of audio on a slow disk; the point is only that nothing hangs forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Temporary files older than this are leftovers of killed processes.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);
const TEMP_PREFIX: &str = ".tmp-";
const MEMO_DIR: &str = "by-path";
const STDERR_TAIL_BYTES: usize = 16 * 1024;
const STDERR_TAIL_LINES: usize = 5;
const READ_CHUNK: usize = 1 << 16;

#[derive(Debug, Clone)]
pub struct AudioDecoder {
    ffmpeg: PathBuf,
    cache_dir: PathBuf,
    timeout: Duration,
}

/// A decoded file in the cache: `path` holds `num_samples` f32le samples at 16 kHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAudio {
    pub path: PathBuf,
    pub num_samples: u64,
}

impl AudioDecoder {
    /// `ffmpeg` is a path to the binary (a bare name is looked up on PATH); the cache directory
    /// is created if needed and cleared of stale temporary files.
    pub fn new(ffmpeg: impl AsRef<Path>, cache_dir: impl AsRef<Path>) -> Result<Self> {
        let ffmpeg = locate_ffmpeg(ffmpeg.as_ref())?;
        let cache_dir = cache_dir.as_ref().to_path_buf();
        let memo_dir = cache_dir.join(MEMO_DIR);
        std::fs::create_dir_all(&memo_dir).map_err(|source| LoaderError::Io {
            path: memo_dir.clone(),
            source,
        })?;
        remove_stale_temps(&cache_dir);
        remove_stale_temps(&memo_dir);
        Ok(AudioDecoder {
            ffmpeg,
            cache_dir,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Longest time one ffmpeg run may take before it is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn ffmpeg(&self) -> &Path {
        &self.ffmpeg
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The whole file as 16 kHz mono samples, through the cache.
    pub fn decode(&self, path: &Path) -> Result<Vec<f32>> {
        let cached = self.ensure_cached(path)?;
        let len = usize::try_from(cached.num_samples).map_err(|_| LoaderError::Audio {
            path: path.to_path_buf(),
            message: "too many samples for this platform".to_string(),
        })?;
        self.read_segment(&cached, 0, len)
    }

    /// Decodes `path` into the cache unless its content is already there.
    pub fn ensure_cached(&self, path: &Path) -> Result<CachedAudio> {
        let meta = source_metadata(path)?;
        if !meta.is_file() {
            return Err(LoaderError::Audio {
                path: path.to_path_buf(),
                message: "not a regular file".to_string(),
            });
        }
        let content = self.content_hash(path, &meta)?;
        let mut key = blake3::Hasher::new();
        key.update(DECODER_TAG.as_bytes());
        key.update(&[0]);
        key.update(content.as_bytes());
        let target = self
            .cache_dir
            .join(format!("{}.f32", key.finalize().to_hex()));

        if let Some(cached) = existing_cache(&target) {
            return Ok(cached);
        }

        let temp = temp_path(&self.cache_dir, &target);
        let result = self.decode_to_file(path, &temp);
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(err) => {
                let _ = std::fs::remove_file(&temp);
                return Err(err);
            }
        };
        if let Err(source) = std::fs::rename(&temp, &target) {
            let _ = std::fs::remove_file(&temp);
            // Another writer may have won a race on a platform that refuses to replace.
            return existing_cache(&target).ok_or(LoaderError::Io {
                path: target,
                source,
            });
        }
        Ok(CachedAudio {
            path: target,
            num_samples: bytes / 4,
        })
    }

    /// Samples `[start, start + len)` of a cached file; past the end reads as silence.
    pub fn read_segment(&self, cached: &CachedAudio, start: u64, len: usize) -> Result<Vec<f32>> {
        read_samples(&cached.path, start, len)
    }

    fn decode_to_file(&self, source: &Path, temp: &Path) -> Result<u64> {
        let io_error = |source| LoaderError::Io {
            path: temp.to_path_buf(),
            source,
        };
        let file = File::create(temp).map_err(io_error)?;
        let mut writer = BufWriter::with_capacity(READ_CHUNK, file);
        let mut bytes = 0u64;
        run_ffmpeg(&self.ffmpeg, source, self.timeout, &mut |chunk| {
            bytes += chunk.len() as u64;
            writer.write_all(chunk).map_err(io_error)
        })?;
        if bytes < 4 {
            return Err(no_samples(source));
        }
        let file = writer.into_inner().map_err(|e| io_error(e.into_error()))?;
        // A shorter file after a crash would silently be wrong audio, so persist before rename.
        file.sync_data().map_err(io_error)?;
        Ok(bytes)
    }

    /// blake3 of the file bytes, memoised by path, size and mtime.
    fn content_hash(&self, path: &Path, meta: &std::fs::Metadata) -> Result<blake3::Hash> {
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let memo = self.cache_dir.join(MEMO_DIR).join(
            blake3::hash(absolute.as_os_str().as_encoded_bytes())
                .to_hex()
                .as_str(),
        );
        let stamp = file_stamp(meta);
        if let Some(stamp) = &stamp {
            if let Some(hash) = read_memo(&memo, stamp) {
                return Ok(hash);
            }
        }
        let io_error = |source| LoaderError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(file).map_err(io_error)?;
        let hash = hasher.finalize();
        // Memoise only if the file did not change while it was read; the memo is an
        // optimisation, so failing to write it (read-only cache) is not an error.
        let after = std::fs::metadata(path).ok().as_ref().and_then(file_stamp);
        if let (Some(stamp), Some(after)) = (stamp, after) {
            if stamp == after {
                let text = format!("v1 {} {} {}\n", stamp.0, stamp.1, hash.to_hex());
                let _ = write_atomic(&memo, text.as_bytes());
            }
        }
        Ok(hash)
    }
}

/// Decodes a whole file without touching any cache (one-off inference).
pub fn decode_uncached(ffmpeg: &Path, path: &Path, timeout: Duration) -> Result<Vec<f32>> {
    let ffmpeg = locate_ffmpeg(ffmpeg)?;
    source_metadata(path)?;
    let mut samples = Vec::new();
    let mut carry = [0u8; 4];
    let mut carried = 0usize;
    run_ffmpeg(&ffmpeg, path, timeout, &mut |mut chunk| {
        if carried > 0 {
            let take = (4 - carried).min(chunk.len());
            carry[carried..carried + take].copy_from_slice(&chunk[..take]);
            carried += take;
            chunk = &chunk[take..];
            if carried < 4 {
                return Ok(());
            }
            samples.push(f32::from_le_bytes(carry));
            carried = 0;
        }
        let whole = chunk.len() / 4 * 4;
        samples.extend(
            chunk[..whole]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        carried = chunk.len() - whole;
        carry[..carried].copy_from_slice(&chunk[whole..]);
        Ok(())
    })?;
    if samples.is_empty() {
        return Err(no_samples(path));
    }
    Ok(samples)
}

fn no_samples(path: &Path) -> LoaderError {
    LoaderError::Audio {
        path: path.to_path_buf(),
        message: "no audio samples".to_string(),
    }
}

fn source_metadata(path: &Path) -> Result<std::fs::Metadata> {
    std::fs::metadata(path).map_err(|source| {
        if source.kind() == ErrorKind::NotFound {
            LoaderError::NotFound(path.to_path_buf())
        } else {
            LoaderError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// The ffmpeg binary as given, or looked up on PATH when given as a bare name.
fn locate_ffmpeg(ffmpeg: &Path) -> Result<PathBuf> {
    let mut components = ffmpeg.components();
    let bare = matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    );
    if bare {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths).find_map(|dir| {
                let candidate = dir.join(ffmpeg);
                if candidate.is_file() {
                    return Some(candidate);
                }
                let exe = candidate.with_extension(std::env::consts::EXE_EXTENSION);
                exe.is_file().then_some(exe)
            })
        });
        return found.ok_or(LoaderError::FfmpegMissing);
    }
    if ffmpeg.is_file() {
        Ok(ffmpeg.to_path_buf())
    } else {
        Err(LoaderError::FfmpegMissing)
    }
}

/// Runs ffmpeg on `input`, handing stdout to `sink` as it arrives. stderr is drained on its own
/// thread (so neither pipe can fill and block ffmpeg) and a watchdog kills the process after
/// `timeout`.
fn run_ffmpeg(
    ffmpeg: &Path,
    input: &Path,
    timeout: Duration,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let audio_error = |message: String| LoaderError::Audio {
        path: input.to_path_buf(),
        message,
    };
    // `file:` keeps names with ':' or a leading '-' from being read as protocols or options.
    let mut url = OsString::from("file:");
    url.push(input.as_os_str());
    let mut child = Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(&url)
        .args(["-vn", "-map", "0:a:0", "-ac", "1", "-ar", "16000"])
        .args(["-f", "f32le", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            ErrorKind::NotFound => LoaderError::FfmpegMissing,
            _ => LoaderError::Io {
                path: ffmpeg.to_path_buf(),
                source,
            },
        })?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(audio_error("ffmpeg pipes were not opened".to_string()));
    };
    let stderr_reader = thread::spawn(move || read_tail(stderr, STDERR_TAIL_BYTES));
    let (abort, aborted) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || watch(child, timeout, aborted));

    let mut failure: Option<LoaderError> = None;
    let mut buffer = vec![0u8; READ_CHUNK];
    loop {
        match stdout.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if let Err(err) = sink(&buffer[..n]) {
                    failure = Some(err);
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                failure = Some(audio_error(format!("reading ffmpeg output: {e}")));
                break;
            }
        }
    }
    if failure.is_some() {
        let _ = abort.send(());
    }
    drop(abort);
    drop(stdout);

    let outcome = watchdog.join();
    let stderr_tail = stderr_reader.join().unwrap_or_default();
    let (status, timed_out) =
        outcome.map_err(|_| audio_error("ffmpeg watchdog thread panicked".to_string()))?;
    if timed_out {
        return Err(audio_error(format!(
            "ffmpeg did not finish within {:.1} s and was killed",
            timeout.as_secs_f64()
        )));
    }
    if let Some(err) = failure {
        return Err(err);
    }
    let status = status.map_err(|e| audio_error(format!("waiting for ffmpeg: {e}")))?;
    if !status.success() {
        let lines = last_lines(&stderr_tail, STDERR_TAIL_LINES);
        let message = if lines.is_empty() {
            format!("ffmpeg failed ({status})")
        } else {
            format!("ffmpeg failed ({status}): {lines}")
        };
        return Err(audio_error(message));
    }
    Ok(())
}

/// Waits for the child, killing it on timeout or when the reader aborts; returns the exit
/// status and whether the timeout fired.
fn watch(
    mut child: Child,
    timeout: Duration,
    aborted: mpsc::Receiver<()>,
) -> (std::io::Result<ExitStatus>, bool) {
    let deadline = Instant::now().checked_add(timeout);
    let mut pause = Duration::from_millis(1);
    let mut reader_done = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Ok(status), false),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return (Err(e), false);
            }
        }
        let now = Instant::now();
        let remaining = match deadline {
            Some(deadline) if now >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return (Ok(ExitStatus::default()), true);
            }
            Some(deadline) => deadline - now,
            None => pause,
        };
        let nap = pause.min(remaining);
        if reader_done {
            thread::sleep(nap);
        } else {
            match aborted.recv_timeout(nap) {
                Ok(()) => {
                    let _ = child.kill();
                    return (child.wait(), false);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => reader_done = true,
            }
        }
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Reads a pipe to its end, keeping only the last `limit` bytes.
fn read_tail(mut pipe: impl Read, limit: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 2 * limit {
                    tail.drain(..tail.len() - limit);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if tail.len() > limit {
        tail.drain(..tail.len() - limit);
    }
    tail
}

fn last_lines(bytes: &[u8], count: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(count);
    lines[start..]
        .iter()
        .map(|l| l.chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A complete cache entry at `path`, if there is one.
fn existing_cache(path: &Path) -> Option<CachedAudio> {
    let len = std::fs::metadata(path).ok()?.len();
    (len >= 4 && len % 4 == 0).then(|| CachedAudio {
        path: path.to_path_buf(),
        num_samples: len / 4,
    })
}

fn read_samples(path: &Path, start: u64, len: usize) -> Result<Vec<f32>> {
    let io_error = |source: std::io::Error| {
        if source.kind() == ErrorKind::NotFound {
            LoaderError::NotFound(path.to_path_buf())
        } else {
            LoaderError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let offset = start
        .checked_mul(4)
        .ok_or_else(|| LoaderError::InvalidArgument(format!("segment start {start} too large")))?;
    let mut file = File::open(path).map_err(io_error)?;
    let mut samples = Vec::with_capacity(len);
    let file_len = file.metadata().map_err(io_error)?.len();
    if offset < file_len && len > 0 {
        file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
        let mut reader = file.take((len as u64).saturating_mul(4));
        let mut buffer = vec![0u8; READ_CHUNK.min(len.saturating_mul(4))];
        let mut filled = 0usize;
        loop {
            match reader.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    let whole = filled / 4 * 4;
                    samples.extend(
                        buffer[..whole]
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                    buffer.copy_within(whole..filled, 0);
                    filled -= whole;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }
    samples.resize(len, 0.0);
    Ok(samples)
}

/// (size, mtime in ns since the epoch) identifying one version of a file.
type Stamp = (u64, i128);

fn file_stamp(meta: &std::fs::Metadata) -> Option<Stamp> {
    let modified = meta.modified().ok()?;
    let nanos = match modified.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    };
    Some((meta.len(), nanos))
}

fn read_memo(memo: &Path, stamp: &Stamp) -> Option<blake3::Hash> {
    let text = std::fs::read_to_string(memo).ok()?;
    let mut fields = text.split_whitespace();
    let version = fields.next()?;
    let size: u64 = fields.next()?.parse().ok()?;
    let mtime: i128 = fields.next()?.parse().ok()?;
    let hash = blake3::Hash::from_hex(fields.next()?).ok()?;
    (version == "v1" && (size, mtime) == *stamp).then_some(hash)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other thread or process uses: pid, thread id and a per-process counter.
fn temp_path(dir: &Path, target: &Path) -> PathBuf {
    let thread: String = format!("{:?}", thread::current().id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(
        "{TEMP_PREFIX}{}-{thread}-{count}-{name}",
        std::process::id()
    ))
}

fn write_atomic(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let temp = temp_path(dir, target);
    let result = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, target));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Best effort: a directory we cannot list or files we cannot remove only cost disk space.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;
    use std::sync::Arc;

    /// The ffmpeg for tests: $HARMONYNET_FFMPEG, else PATH. Missing ffmpeg fails the test
    /// unless HARMONYNET_SKIP_FFMPEG_TESTS=1.
    fn test_ffmpeg() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("HARMONYNET_FFMPEG").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        if let Ok(path) = locate_ffmpeg(Path::new("ffmpeg")) {
            return Some(path);
        }
        if std::env::var("HARMONYNET_SKIP_FFMPEG_TESTS").as_deref() == Ok("1") {
            eprintln!("ffmpeg not found; skipped because HARMONYNET_SKIP_FFMPEG_TESTS=1");
            return None;
        }
        panic!(
            "ffmpeg not found: set HARMONYNET_FFMPEG or put ffmpeg on PATH \
             (or set HARMONYNET_SKIP_FFMPEG_TESTS=1 to skip the audio tests)"
        );
    }

    /// 16-bit PCM stereo WAV with a hand-written RIFF header: a sine in both channels with
    /// different amplitudes, so the mono mix is distinguishable from either channel.
    fn sine_wav(path: &Path, seconds: f64, freq: f64, left: f64, right: f64) {
        let rate = 44_100u32;
        let frames = (seconds * f64::from(rate)) as u32;
        let data_len = frames * 4;
        let mut bytes = Vec::with_capacity(44 + data_len as usize);
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
        bytes.extend_from_slice(&2u16.to_le_bytes()); // channels
        bytes.extend_from_slice(&rate.to_le_bytes());
        bytes.extend_from_slice(&(rate * 4).to_le_bytes()); // byte rate
        bytes.extend_from_slice(&4u16.to_le_bytes()); // block align
        bytes.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data_len.to_le_bytes());
        for i in 0..frames {
            let s = (2.0 * PI * freq * f64::from(i) / f64::from(rate)).sin();
            for amplitude in [left, right] {
                let v = (s * amplitude * 32767.0).round() as i16;
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        std::fs::write(path, bytes).unwrap();
    }

    /// Frequency from the spacing of rising zero crossings (linearly interpolated).
    fn frequency(samples: &[f32]) -> f64 {
        let crossings: Vec<f64> = samples
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
            .map(|(i, w)| i as f64 + f64::from(w[0] / (w[0] - w[1])))
            .collect();
        assert!(crossings.len() > 10, "too few zero crossings");
        let span = crossings[crossings.len() - 1] - crossings[0];
        (crossings.len() - 1) as f64 * f64::from(SAMPLE_RATE) / span
    }

    fn rms(samples: &[f32]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    fn cache_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn decodes_stereo_44k_sine_to_mono_16k() {
        let Some(ffmpeg) = test_ffmpeg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("sine.wav");
        sine_wav(&wav, 1.5, 440.0, 0.6, 0.2);
        let decoder = AudioDecoder::new(&ffmpeg, dir.path().join("cache")).unwrap();
        let samples = decoder.decode(&wav).unwrap();
        assert!(
            (samples.len() as i64 - 24_000).abs() <= 32,
            "{} samples",
            samples.len()
        );
        let middle = &samples[1600..samples.len() - 1600];
        let freq = frequency(middle);
        assert!((freq - 440.0).abs() < 0.5, "frequency {freq}");
        // ffmpeg's default stereo downmix is (L + R) / sqrt(2); either channel alone would
        // give 0.6 or 0.2 peak.
        let peak = rms(middle) * 2f64.sqrt();
        let expected = (0.6 + 0.2) / 2f64.sqrt();
        assert!(
            (peak - expected).abs() < 0.01,
            "peak {peak}, expected {expected}"
        );

        let uncached = decode_uncached(&ffmpeg, &wav, DEFAULT_TIMEOUT).unwrap();
        assert_eq!(uncached, samples);
    }

    #[test]
    fn second_decode_reads_the_cache() {
        let Some(ffmpeg) = test_ffmpeg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let wav = dir.path().join("a.wav");
        sine_wav(&wav, 0.5, 1000.0, 0.5, 0.5);
        let decoder = AudioDecoder::new(&ffmpeg, &cache).unwrap();
        let first = decoder.decode(&wav).unwrap();
        let cached = decoder.ensure_cached(&wav).unwrap();
        assert_eq!(cache_files(&cache), vec![cached.path.clone()]);
        assert_eq!(cached.num_samples, first.len() as u64);
        assert_eq!(cache_files(&cache.join(MEMO_DIR)).len(), 1);

        // With a decoder whose ffmpeg cannot run, only a cache hit can succeed.
        let broken = AudioDecoder {
            ffmpeg: dir.path().join("no-such-ffmpeg"),
            ..decoder.clone()
        };
        assert_eq!(broken.decode(&wav).unwrap(), first);
        // A copy under another name has the same content, hence the same entry.
        let copy = dir.path().join("copy.wav");
        std::fs::copy(&wav, &copy).unwrap();
        assert_eq!(broken.ensure_cached(&copy).unwrap(), cached);

        // Changed content gets a new entry.
        sine_wav(&wav, 0.25, 1000.0, 0.5, 0.5);
        let changed = decoder.ensure_cached(&wav).unwrap();
        assert_ne!(changed.path, cached.path);
        assert!((changed.num_samples as i64 - 4000).abs() <= 32);
        assert_eq!(cache_files(&cache).len(), 2);
    }

    #[test]
    fn concurrent_decodes_agree_and_leave_one_cache_file() {
        let Some(ffmpeg) = test_ffmpeg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let wav = Arc::new(dir.path().join("shared.wav"));
        sine_wav(&wav, 2.0, 330.0, 0.3, 0.4);
        let decoder = Arc::new(AudioDecoder::new(&ffmpeg, &cache).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let decoder = Arc::clone(&decoder);
                let wav = Arc::clone(&wav);
                thread::spawn(move || decoder.decode(&wav).unwrap())
            })
            .collect();
        let results: Vec<Vec<f32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results[0].len() > 31_000);
        assert!(results.iter().all(|r| *r == results[0]));
        let files = cache_files(&cache);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].extension().is_some_and(|e| e == "f32"));
        assert_eq!(cache_files(&cache.join(MEMO_DIR)).len(), 1);
    }

    #[test]
    fn unreadable_inputs_give_audio_errors() {
        let Some(ffmpeg) = test_ffmpeg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let decoder = AudioDecoder::new(&ffmpeg, &cache).unwrap();

        let fake = dir.path().join("notes.mp3");
        std::fs::write(
            &fake,
            "these are not the samples you are looking for\n".repeat(50),
        )
        .unwrap();
        match decoder.decode(&fake) {
            Err(LoaderError::Audio { path, message }) => {
                assert_eq!(path, fake);
                assert!(message.starts_with("ffmpeg failed"), "{message}");
            }
            other => panic!("expected an audio error, got {other:?}"),
        }

        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            decoder.decode(&empty),
            Err(LoaderError::Audio { .. })
        ));
        assert!(matches!(
            decode_uncached(&ffmpeg, &empty, DEFAULT_TIMEOUT),
            Err(LoaderError::Audio { .. })
        ));

        // A valid WAV holding zero frames decodes "successfully" to nothing.
        let silent = dir.path().join("zero.wav");
        sine_wav(&silent, 0.0, 440.0, 0.5, 0.5);
        match decoder.decode(&silent) {
            Err(LoaderError::Audio { message, .. }) => assert_eq!(message, "no audio samples"),
            other => panic!("expected no audio samples, got {other:?}"),
        }

        let missing = dir.path().join("missing.flac");
        assert!(matches!(decoder.decode(&missing), Err(LoaderError::NotFound(p)) if p == missing));
        assert!(matches!(
            decode_uncached(&ffmpeg, &missing, DEFAULT_TIMEOUT),
            Err(LoaderError::NotFound(_))
        ));
        assert!(matches!(
            decoder.decode(dir.path()),
            Err(LoaderError::Audio { .. })
        ));

        // Failures leave no cache entries or temporary files behind.
        assert!(cache_files(&cache).is_empty(), "{:?}", cache_files(&cache));
    }

    #[test]
    fn awkward_file_names_are_not_options_or_protocols() {
        let Some(ffmpeg) = test_ffmpeg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("-i http:x.wav");
        sine_wav(&wav, 0.1, 440.0, 0.5, 0.5);
        let samples = decode_uncached(&ffmpeg, &wav, DEFAULT_TIMEOUT).unwrap();
        assert!((samples.len() as i64 - 1600).abs() <= 32);
    }

    #[cfg(unix)]
    #[test]
    fn hung_ffmpeg_is_killed_after_the_timeout() {
        let Some(ffmpeg) = test_ffmpeg() else { return };
        let dir = tempfile::tempdir().unwrap();
        // Opening a FIFO nobody writes to blocks ffmpeg forever.
        let fifo = dir.path().join("stuck.wav");
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let started = Instant::now();
        match decode_uncached(&ffmpeg, &fifo, Duration::from_millis(500)) {
            Err(LoaderError::Audio { message, .. }) => {
                assert!(message.contains("killed"), "{message}")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        // The cached path refuses non-regular files instead of hashing a FIFO forever.
        let decoder = AudioDecoder::new(&ffmpeg, dir.path().join("cache")).unwrap();
        assert!(matches!(
            decoder.ensure_cached(&fifo),
            Err(LoaderError::Audio { .. })
        ));
    }

    #[test]
    fn read_segment_reads_ranges_and_zero_pads_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.f32");
        let values: Vec<f32> = (0..100_000).map(|i| i as f32 * 0.5).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        let cached = existing_cache(&path).unwrap();
        assert_eq!(cached.num_samples, 100_000);

        assert_eq!(read_samples(&path, 10, 5).unwrap(), &values[10..15]);
        // Longer than one read chunk, so reassembly across chunks is exercised.
        assert_eq!(read_samples(&path, 3, 40_000).unwrap(), &values[3..40_003]);
        let tail = read_samples(&path, 99_998, 5).unwrap();
        assert_eq!(tail, vec![49_999.0, 49_999.5, 0.0, 0.0, 0.0]);
        assert_eq!(read_samples(&path, 200_000, 3).unwrap(), vec![0.0; 3]);
        assert!(read_samples(&path, 0, 0).unwrap().is_empty());
        assert!(matches!(
            read_samples(&path, u64::MAX, 1),
            Err(LoaderError::InvalidArgument(_))
        ));
        assert!(matches!(
            read_samples(&dir.path().join("gone.f32"), 0, 1),
            Err(LoaderError::NotFound(_))
        ));
    }

    #[test]
    fn read_segment_of_decoded_audio() {
        let Some(ffmpeg) = test_ffmpeg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("s.wav");
        sine_wav(&wav, 1.0, 440.0, 0.5, 0.5);
        let decoder = AudioDecoder::new(&ffmpeg, dir.path().join("cache")).unwrap();
        let all = decoder.decode(&wav).unwrap();
        let cached = decoder.ensure_cached(&wav).unwrap();
        let n = all.len();
        let segment = decoder.read_segment(&cached, 8000, 4000).unwrap();
        assert_eq!(segment, &all[8000..12_000]);
        let past = decoder.read_segment(&cached, n as u64 - 10, 100).unwrap();
        assert_eq!(&past[..10], &all[n - 10..]);
        assert!(past[10..].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn missing_ffmpeg_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        for ffmpeg in [
            dir.path().join("no-such-ffmpeg"),
            PathBuf::from("no-such-ffmpeg-on-path"),
        ] {
            assert!(matches!(
                AudioDecoder::new(&ffmpeg, dir.path().join("cache")),
                Err(LoaderError::FfmpegMissing)
            ));
            assert!(matches!(
                decode_uncached(&ffmpeg, &dir.path().join("a.wav"), DEFAULT_TIMEOUT),
                Err(LoaderError::FfmpegMissing)
            ));
        }
    }

    #[test]
    fn content_hash_memo_tracks_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        // Any existing file stands in for ffmpeg: hashing never runs it.
        let fake_ffmpeg = dir.path().join("ffmpeg");
        std::fs::write(&fake_ffmpeg, b"").unwrap();
        let decoder = AudioDecoder::new(&fake_ffmpeg, dir.path().join("cache")).unwrap();
        let file = dir.path().join("data.bin");
        std::fs::write(&file, b"first version").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let first = decoder.content_hash(&file, &meta).unwrap();
        assert_eq!(first, blake3::hash(b"first version"));
        let memos = cache_files(&decoder.cache_dir.join(MEMO_DIR));
        assert_eq!(memos.len(), 1);

        // A memo with a matching stamp is trusted (that is what saves re-hashing)...
        let stamp = file_stamp(&meta).unwrap();
        let planted = blake3::hash(b"planted");
        let text = format!("v1 {} {} {}\n", stamp.0, stamp.1, planted.to_hex());
        std::fs::write(&memos[0], text).unwrap();
        assert_eq!(decoder.content_hash(&file, &meta).unwrap(), planted);

        // ...and a changed size or mtime invalidates it.
        std::fs::write(&file, b"second version, longer").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let second = decoder.content_hash(&file, &meta).unwrap();
        assert_eq!(second, blake3::hash(b"second version, longer"));
    }

    #[test]
    fn stale_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let fake_ffmpeg = dir.path().join("ffmpeg");
        std::fs::write(&fake_ffmpeg, b"").unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        let old = cache.join(format!("{TEMP_PREFIX}1-1-1-x.f32"));
        let fresh = cache.join(format!("{TEMP_PREFIX}2-2-2-y.f32"));
        std::fs::write(&old, b"partial").unwrap();
        std::fs::write(&fresh, b"in progress").unwrap();
        let two_days_ago = SystemTime::now() - 2 * STALE_TEMP_AGE;
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        AudioDecoder::new(&fake_ffmpeg, &cache).unwrap();
        assert!(!old.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let tail = read_tail(text.as_bytes(), 64);
        assert!(tail.len() <= 64);
        assert_eq!(last_lines(&tail, 2), "line 9998 | line 9999");
        assert_eq!(last_lines(b"\n  \n", 5), "");
    }
}
