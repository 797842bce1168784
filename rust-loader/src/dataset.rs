//! The MAESTRO index: one row per recording (composer, title, split, year, MIDI and audio paths
//! relative to the dataset root, duration in seconds).
//!
//! Reads `maestro-v3.0.0.csv`, else `maestro-v3.0.0.json`, else the newest other
//! `maestro-v*.csv|json` in the root (CSV preferred at equal version). JSON may be MAESTRO v3's
//! column-oriented form (`{"column": {"0": value, ...}}`) or the v1/v2 list of records.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use crate::error::{LoaderError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "validation" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            _ => Err(format!(
                "unknown split {s:?} (expected train, validation or test)"
            )),
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PieceEntry {
    pub composer: String,
    pub title: String,
    pub split: Split,
    pub year: Option<i32>,
    pub midi_filename: String,
    pub audio_filename: String,
    pub duration: f64,
}

const V3_CSV: &str = "maestro-v3.0.0.csv";
const V3_JSON: &str = "maestro-v3.0.0.json";

/// Index columns in `PieceEntry` field order.
const COLUMNS: [&str; 7] = [
    "canonical_composer",
    "canonical_title",
    "split",
    "year",
    "midi_filename",
    "audio_filename",
    "duration",
];

/// Reads the dataset index under `root`.
pub fn read_index(root: &Path) -> Result<Vec<PieceEntry>> {
    let index = find_index(root)?;
    let text = std::fs::read_to_string(&index).map_err(|source| LoaderError::Io {
        path: index.clone(),
        source,
    })?;
    let is_json = index
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        parse_json(&text)
    } else {
        parse_csv(&text)
    };
    parsed.map_err(|message| LoaderError::Index {
        path: index,
        message,
    })
}

/// Path of a file named in the index (forward slashes, relative to `root`); absolute names
/// are returned as they are, so hand-made indexes may point elsewhere.
pub fn resolve(root: &Path, rel: &str) -> PathBuf {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute() {
        return rel_path.to_path_buf();
    }
    let mut path = root.to_path_buf();
    for part in rel.split(['/', '\\']) {
        if !part.is_empty() && part != "." {
            path.push(part);
        }
    }
    path
}

fn find_index(root: &Path) -> Result<PathBuf> {
    if !root.is_dir() {
        return Err(LoaderError::NotFound(root.to_path_buf()));
    }
    for name in [V3_CSV, V3_JSON] {
        let path = root.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    let entries = std::fs::read_dir(root).map_err(|source| LoaderError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let mut candidates: Vec<(Vec<u64>, bool, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("maestro-v") else {
            continue;
        };
        let (version, is_csv) = if let Some(v) = rest.strip_suffix(".csv") {
            (v, true)
        } else if let Some(v) = rest.strip_suffix(".json") {
            (v, false)
        } else {
            continue;
        };
        let numbers: Option<Vec<u64>> = version.split('.').map(|p| p.parse().ok()).collect();
        if let Some(numbers) = numbers {
            if entry.path().is_file() {
                candidates.push((numbers, is_csv, entry.path()));
            }
        }
    }
    candidates.sort();
    candidates
        .pop()
        .map(|(_, _, path)| path)
        .ok_or_else(|| LoaderError::Index {
            path: root.to_path_buf(),
            message: format!("no {V3_CSV}, {V3_JSON} or other maestro-v*.csv/json in this folder"),
        })
}

/// Raw cell values of one row, in `COLUMNS` order, already converted to text or numbers.
struct RawRow<'a> {
    /// How to name the row in errors.
    label: String,
    composer: String,
    title: String,
    split: &'a str,
    year: &'a str,
    midi: String,
    audio: String,
    duration: &'a str,
}

fn build_entry(row: RawRow<'_>) -> std::result::Result<PieceEntry, String> {
    let RawRow { label, .. } = &row;
    let split = row
        .split
        .parse::<Split>()
        .map_err(|e| format!("{label}: {e}"))?;
    let year = match row.year.trim() {
        "" => None,
        text => Some(parse_year(text).ok_or_else(|| format!("{label}: bad year {text:?}"))?),
    };
    let duration = row
        .duration
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d >= 0.0)
        .ok_or_else(|| format!("{label}: bad duration {:?}", row.duration))?;
    for (column, value) in [("midi_filename", &row.midi), ("audio_filename", &row.audio)] {
        if value.trim().is_empty() {
            return Err(format!("{label}: empty {column}"));
        }
    }
    Ok(PieceEntry {
        composer: row.composer,
        title: row.title,
        split,
        year,
        midi_filename: row.midi.trim().to_string(),
        audio_filename: row.audio.trim().to_string(),
        duration,
    })
}

/// Years may be written as `2018` or `2018.0` (pandas exports of integer columns with gaps).
fn parse_year(text: &str) -> Option<i32> {
    if let Ok(year) = text.parse::<i32>() {
        return Some(year);
    }
    let value = text.parse::<f64>().ok()?;
    (value.fract() == 0.0 && value.abs() < 1e6).then_some(value as i32)
}

fn parse_csv(text: &str) -> std::result::Result<Vec<PieceEntry>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let mut index = [0usize; COLUMNS.len()];
    let mut missing = Vec::new();
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        match names.iter().position(|n| n == column) {
            Some(i) => *slot = i,
            None => missing.push(column),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "missing column(s) {} (header has: {})",
            missing.join(", "),
            names.join(", ")
        ));
    }

    let mut entries = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("malformed CSV: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |column: usize| record.get(index[column]).unwrap_or("");
        entries.push(build_entry(RawRow {
            label: format!("line {line}"),
            composer: cell(0).to_string(),
            title: cell(1).to_string(),
            split: cell(2),
            year: cell(3),
            midi: cell(4).to_string(),
            audio: cell(5).to_string(),
            duration: cell(6),
        })?);
    }
    Ok(entries)
}

fn parse_json(text: &str) -> std::result::Result<Vec<PieceEntry>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    match value {
        Value::Object(columns) => parse_json_columns(&columns),
        Value::Array(records) => parse_json_records(&records),
        _ => Err("expected a JSON object of columns or a list of records".to_string()),
    }
}

/// A JSON cell as text for the shared row parser; numbers keep their JSON spelling.
fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn parse_json_columns(
    columns: &serde_json::Map<String, Value>,
) -> std::result::Result<Vec<PieceEntry>, String> {
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !columns.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing column(s) {}", missing.join(", ")));
    }
    let mut tables: Vec<&serde_json::Map<String, Value>> = Vec::with_capacity(COLUMNS.len());
    for column in COLUMNS {
        match &columns[column] {
            Value::Object(map) => tables.push(map),
            _ => return Err(format!("column {column} is not an object of rows")),
        }
    }
    // Rows are the keys of the first column, in numeric order when they are numbers.
    let mut keys: Vec<&String> = tables[0].keys().collect();
    keys.sort_by_key(|k| (k.parse::<u64>().unwrap_or(u64::MAX), k.to_string()));
    let mut entries = Vec::with_capacity(keys.len());
    for key in keys {
        let mut cells: Vec<String> = Vec::with_capacity(COLUMNS.len());
        for (column, table) in COLUMNS.iter().zip(&tables) {
            let value = table
                .get(key)
                .ok_or_else(|| format!("row {key}: no value in column {column}"))?;
            cells.push(json_text(value).ok_or_else(|| format!("row {key}: bad {column} {value}"))?);
        }
        entries.push(entry_from_cells(format!("row {key}"), cells)?);
    }
    Ok(entries)
}

fn parse_json_records(records: &[Value]) -> std::result::Result<Vec<PieceEntry>, String> {
    let mut entries = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let Value::Object(fields) = record else {
            return Err(format!("record {i}: not an object"));
        };
        let mut cells: Vec<String> = Vec::with_capacity(COLUMNS.len());
        for column in COLUMNS {
            let value = fields
                .get(column)
                .ok_or_else(|| format!("record {i}: missing column {column}"))?;
            cells
                .push(json_text(value).ok_or_else(|| format!("record {i}: bad {column} {value}"))?);
        }
        entries.push(entry_from_cells(format!("record {i}"), cells)?);
    }
    Ok(entries)
}

fn entry_from_cells(label: String, cells: Vec<String>) -> std::result::Result<PieceEntry, String> {
    let mut cells = cells.into_iter();
    let mut next = || cells.next().unwrap_or_default();
    let (composer, title, split, year, midi, audio, duration) =
        (next(), next(), next(), next(), next(), next(), next());
    build_entry(RawRow {
        label,
        composer,
        title,
        split: &split,
        year: &year,
        midi,
        audio,
        duration: &duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n\
Alban Berg,Sonata Op. 1,train,2018,2018/a.midi,2018/a.wav,698.66\n\
\"Bach, Johann Sebastian\",\"Prelude and Fugue in C, BWV 846\",validation,2006,2006/b.midi,2006/b.wav,120.5\n\
Chopin,\"Ballade \"\"No. 1\"\"\",test,,2009/c.midi,2009/c.wav,5\n";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn index_error(root: &Path) -> (PathBuf, String) {
        match read_index(root) {
            Err(LoaderError::Index { path, message }) => (path, message),
            other => panic!("expected an index error, got {other:?}"),
        }
    }

    #[test]
    fn reads_csv_with_quoted_commas() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), V3_CSV, CSV);
        let entries = read_index(dir.path()).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[1],
            PieceEntry {
                composer: "Bach, Johann Sebastian".into(),
                title: "Prelude and Fugue in C, BWV 846".into(),
                split: Split::Validation,
                year: Some(2006),
                midi_filename: "2006/b.midi".into(),
                audio_filename: "2006/b.wav".into(),
                duration: 120.5,
            }
        );
        assert_eq!(entries[2].title, "Ballade \"No. 1\"");
        assert_eq!(entries[2].year, None);
        assert_eq!(entries[2].split, Split::Test);
        assert_eq!(entries[0].duration, 698.66);
    }

    #[test]
    fn csv_column_order_may_vary_and_extra_columns_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let text = "\u{feff}duration,notes,audio_filename,split,midi_filename,canonical_title,year,canonical_composer\n\
3.5,\"extra, ignored\",x/a.flac,train,x/a.mid,\"Title, with comma\",2004.0,Liszt\n";
        write(dir.path(), V3_CSV, text);
        let entries = read_index(dir.path()).unwrap();
        assert_eq!(
            entries,
            vec![PieceEntry {
                composer: "Liszt".into(),
                title: "Title, with comma".into(),
                split: Split::Train,
                year: Some(2004),
                midi_filename: "x/a.mid".into(),
                audio_filename: "x/a.flac".into(),
                duration: 3.5,
            }]
        );
    }

    #[test]
    fn reads_column_oriented_json_when_csv_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        // Rows listed out of order ("10" after "2") to check numeric ordering.
        let json = r#"{
            "canonical_composer": {"0": "Berg", "2": "Haydn", "10": "Bach, J. S."},
            "canonical_title": {"0": "Sonata", "2": "Sonata in E-flat, Hob. XVI:52", "10": "Fugue"},
            "split": {"0": "train", "2": "test", "10": "validation"},
            "year": {"0": 2018, "2": 2004, "10": null},
            "midi_filename": {"0": "2018/a.midi", "2": "2004/b.midi", "10": "2011/c.midi"},
            "audio_filename": {"0": "2018/a.wav", "2": "2004/b.wav", "10": "2011/c.wav"},
            "duration": {"0": 698.661160312, "2": 1000, "10": 12.25}
        }"#;
        write(dir.path(), V3_JSON, json);
        let entries = read_index(dir.path()).unwrap();
        let titles: Vec<&str> = entries.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(titles, ["Sonata", "Sonata in E-flat, Hob. XVI:52", "Fugue"]);
        assert_eq!(entries[0].duration, 698.661160312);
        assert_eq!(entries[1].duration, 1000.0);
        assert_eq!(entries[1].year, Some(2004));
        assert_eq!(entries[2].year, None);
        assert_eq!(entries[2].split, Split::Validation);
        assert_eq!(entries[2].composer, "Bach, J. S.");

        // The CSV wins when both exist.
        write(dir.path(), V3_CSV, CSV);
        assert_eq!(read_index(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn falls_back_to_the_newest_other_version_and_record_json() {
        let dir = tempfile::tempdir().unwrap();
        let records = r#"[{"canonical_composer": "Mozart", "canonical_title": "K. 331",
            "split": "train", "year": 2017, "midi_filename": "m.midi",
            "audio_filename": "m.wav", "duration": 60.0}]"#;
        write(dir.path(), "maestro-v2.0.0.json", records);
        write(dir.path(), "maestro-v1.0.0.csv", CSV);
        write(dir.path(), "maestro-v10.csv.bak", "not an index");
        let entries = read_index(dir.path()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].composer, "Mozart");
        assert_eq!(entries[0].year, Some(2017));
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            V3_CSV,
            "canonical_composer,canonical_title,split,year,midi_filename,audio_filename\nA,B,train,2018,a.mid,a.wav\n",
        );
        let (error_path, message) = index_error(dir.path());
        assert_eq!(error_path, path);
        assert!(message.contains("missing column(s) duration"), "{message}");

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), V3_JSON, r#"{"canonical_composer": {"0": "A"}}"#);
        let (_, message) = index_error(dir.path());
        assert!(message.contains("canonical_title"), "{message}");
    }

    #[test]
    fn bad_split_duration_and_year_name_the_row() {
        let header =
            "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n";
        let good = "A,B,train,2018,a.mid,a.wav,1.0\n";
        for (row, expect) in [
            (
                "A,B,dev,2018,a.mid,a.wav,1.0\n",
                "line 3: unknown split \"dev\"",
            ),
            (
                "A,B,test,2018,a.mid,a.wav,long\n",
                "line 3: bad duration \"long\"",
            ),
            ("A,B,test,2018,a.mid,a.wav,-1\n", "line 3: bad duration"),
            ("A,B,test,2018,a.mid,a.wav,NaN\n", "line 3: bad duration"),
            ("A,B,test,MMXVIII,a.mid,a.wav,1\n", "line 3: bad year"),
            ("A,B,test,2018,,a.wav,1\n", "line 3: empty midi_filename"),
            ("A,B,test,2018,a.mid\n", "malformed CSV"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), V3_CSV, &format!("{header}{good}{row}"));
            let (_, message) = index_error(dir.path());
            assert!(message.contains(expect), "{message:?} lacks {expect:?}");
        }

        let dir = tempfile::tempdir().unwrap();
        let json = r#"{"canonical_composer": {"0": "A"}, "canonical_title": {"0": "B"},
            "split": {"0": "training"}, "year": {"0": 2018}, "midi_filename": {"0": "a"},
            "audio_filename": {"0": "b"}, "duration": {"0": 1}}"#;
        write(dir.path(), V3_JSON, json);
        let (_, message) = index_error(dir.path());
        assert!(message.contains("row 0: unknown split"), "{message}");
    }

    #[test]
    fn missing_or_garbled_index() {
        let dir = tempfile::tempdir().unwrap();
        let (path, message) = index_error(dir.path());
        assert_eq!(path, dir.path());
        assert!(message.contains("maestro-v3.0.0.csv"), "{message}");

        assert!(matches!(
            read_index(&dir.path().join("nope")),
            Err(LoaderError::NotFound(_))
        ));

        write(dir.path(), V3_JSON, "{not json");
        let (_, message) = index_error(dir.path());
        assert!(message.contains("malformed JSON"), "{message}");

        write(dir.path(), V3_JSON, r#""a string""#);
        let (_, message) = index_error(dir.path());
        assert!(message.contains("expected a JSON object"), "{message}");
    }

    #[test]
    fn split_parsing() {
        assert_eq!("train".parse::<Split>(), Ok(Split::Train));
        assert_eq!(" Validation ".parse::<Split>(), Ok(Split::Validation));
        assert_eq!("test".parse::<Split>(), Ok(Split::Test));
        let err = "valid".parse::<Split>().unwrap_err();
        assert!(err.contains("train, validation or test"), "{err}");
        assert_eq!(Split::Validation.to_string(), "validation");
    }

    #[test]
    fn resolve_joins_forward_slash_paths() {
        let root = Path::new("data").join("maestro");
        assert_eq!(
            resolve(&root, "2018/piece.wav"),
            root.join("2018").join("piece.wav")
        );
        assert_eq!(resolve(&root, "./a//b.midi"), root.join("a").join("b.midi"));
        let absolute = std::env::temp_dir().join("x.wav");
        assert_eq!(resolve(&root, absolute.to_str().unwrap()), absolute);
    }
}
