//! `footfall sketch`: look at, count and update Redis HyperLogLog files.
//!
//! A sketch file holds the raw bytes of a Redis HyperLogLog key, as
//! `redis-cli --raw GET key > FILE` writes them, and can go back into Redis with
//! `SET` (for example `redis-cli -x SET key < FILE`).
//!
//! # The trailing newline
//!
//! `redis-cli` ends its output with one `\n`, which is not part of the value. A
//! sketch may itself end with the byte 0x0a (a sparse ZERO opcode for 11 registers,
//! or the low byte of an XZERO), so the newline cannot simply be stripped. It does
//! not need to be guessed either: a well-formed sparse sketch covers exactly 16384
//! registers, so one more opcode byte overruns and one byte fewer falls short or
//! cuts an XZERO in two, and a dense sketch has one exact length. At most one of
//! "the bytes" and "the bytes without a final `\n`" is therefore a valid sketch.
//! [`decode`] takes the bytes as they are when they are valid, and otherwise drops
//! exactly one final `\n` when that makes them valid; when neither is valid it
//! reports what is wrong with the bytes as they are.
//!
//! The logic lives in functions over bytes and readers ([`decode`], [`inspect`],
//! [`count`], [`add_lines`]) so it is tested without files or processes; [`run`]
//! does the file I/O for the binary.

use std::fmt::Write as _;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use footfall::sketch::{Encoding, Hll, REGISTERS, RedisHeader, SketchError, read_header};

/// The `footfall sketch` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum SketchCommand {
    /// Show a sketch's encoding, size, registers, cached cardinality and estimate.
    Inspect {
        /// A file holding the raw bytes of a Redis HyperLogLog key.
        file: PathBuf,
    },
    /// Print the estimated number of distinct elements in the union of the sketches.
    Count {
        /// Files holding the raw bytes of Redis HyperLogLog keys.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Add one element per line of standard input to FILE (created when absent).
    ///
    /// An element is the bytes of a line without its "\n" and without a "\r"
    /// right before it, so files with CRLF line ends add the same elements as
    /// with LF; bytes need not be UTF-8, and an empty line adds the empty element,
    /// as `PFADD key ""` does. The file is rewritten in the encoding Redis would
    /// use for the result.
    Add {
        /// The sketch file to update.
        file: PathBuf,
    },
}

/// Why a `footfall sketch` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SketchCliError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file is not a Redis HyperLogLog.
    #[error("{} is not a Redis HyperLogLog: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong with its bytes.
        source: SketchError,
    },
    /// Standard input could not be read.
    #[error("cannot read elements from standard input: {0}")]
    Stdin(io::Error),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The report could not be written to standard output.
    #[error("cannot write to standard output: {0}")]
    Stdout(io::Error),
}

/// A decoded sketch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The sketch.
    pub hll: Hll,
    /// The bytes that hold the sketch: the input, or the input without the final
    /// newline `redis-cli` added.
    pub sketch_bytes: &'a [u8],
    /// The header of those bytes.
    pub header: RedisHeader,
    /// True when a final `\n` was dropped (see the module documentation).
    pub stripped_newline: bool,
}

/// Decodes the contents of a sketch file, tolerating the one `\n` `redis-cli`
/// appends (see the module documentation for why this is unambiguous).
///
/// # Errors
///
/// What is wrong with the bytes as they are, when neither they nor they without a
/// final `\n` are a valid sketch.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, SketchError> {
    let as_is = decode_exact(bytes, false);
    if as_is.is_ok() {
        return as_is;
    }
    match bytes.strip_suffix(b"\n") {
        Some(stripped) => decode_exact(stripped, true).or(as_is),
        None => as_is,
    }
}

/// Decodes exactly these bytes.
fn decode_exact(bytes: &[u8], stripped_newline: bool) -> Result<Decoded<'_>, SketchError> {
    let header = read_header(bytes)?;
    let hll = Hll::from_redis_bytes(bytes)?;
    Ok(Decoded {
        hll,
        sketch_bytes: bytes,
        header,
        stripped_newline,
    })
}

/// A human-readable report on the contents of a sketch file.
///
/// # Errors
///
/// As [`decode`].
pub fn inspect(bytes: &[u8]) -> Result<String, SketchError> {
    let decoded = decode(bytes)?;
    let hll = &decoded.hll;
    let histogram = hll.histogram();
    let nonzero = REGISTERS - histogram[0] as usize;
    let max_register = histogram.iter().rposition(|&count| count != 0).unwrap_or(0);
    let estimate = hll.count();

    // `write!` to a String cannot fail, so its results are ignored.
    let mut report = String::new();
    let _ = writeln!(
        report,
        "encoding: {}",
        encoding_name(decoded.header.encoding)
    );
    let _ = write!(report, "size: {} bytes", decoded.sketch_bytes.len());
    if decoded.stripped_newline {
        let _ = write!(
            report,
            " (plus the trailing newline redis-cli adds, ignored)"
        );
    }
    report.push('\n');
    if hll.encoding() != decoded.header.encoding {
        let _ = writeln!(
            report,
            "redis would use: {} (Redis converts sparse to dense but never back)",
            encoding_name(hll.encoding())
        );
    }
    let _ = writeln!(report, "registers non-zero: {nonzero} of {REGISTERS}");
    let _ = writeln!(report, "max register: {max_register}");
    let _ = write!(report, "histogram (value:registers):");
    for (value, &registers) in histogram.iter().enumerate() {
        if registers != 0 {
            let _ = write!(report, " {value}:{registers}");
        }
    }
    report.push('\n');
    let cached = decoded.header.cached_cardinality;
    if decoded.header.cached_cardinality_valid {
        let _ = write!(
            report,
            "cached cardinality: {cached} (marked valid: Redis PFCOUNT returns it without reading the registers"
        );
        if cached != estimate {
            let _ = write!(report, "; it does NOT match the registers");
        }
        report.push_str(")\n");
    } else {
        let _ = writeln!(
            report,
            "cached cardinality: {cached} (marked stale: Redis recomputes it)"
        );
    }
    let _ = writeln!(report, "estimate: {estimate}");
    Ok(report)
}

/// The estimated number of distinct elements in the union of the sketches held by
/// these file contents.
///
/// # Errors
///
/// The index of the first invalid input and what is wrong with it.
pub fn count(contents: &[&[u8]]) -> Result<u64, (usize, SketchError)> {
    let sketches = contents
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            decode(bytes)
                .map(|decoded| decoded.hll)
                .map_err(|error| (index, error))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let references: Vec<&Hll> = sketches.iter().collect();
    Ok(Hll::count_union(&references))
}

/// What [`add_lines`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddSummary {
    /// Lines read, that is elements added (repeated ones included).
    pub elements: u64,
    /// Registers whose value changed.
    pub registers_changed: usize,
}

/// Adds one element per line of `input` to `hll`: the bytes of the line without
/// its `\n` and without a `\r` right before it. A last line without `\n` counts;
/// an empty line is the empty element.
///
/// # Errors
///
/// An error reading `input`; the elements read before it have been added.
pub fn add_lines(hll: &mut Hll, mut input: impl BufRead) -> io::Result<AddSummary> {
    let before = hll.clone();
    let mut elements = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let element = line.strip_suffix(b"\n").unwrap_or(&line);
        let element = element.strip_suffix(b"\r").unwrap_or(element);
        hll.add(element);
        elements += 1;
    }
    let registers_changed = (0..REGISTERS)
        .filter(|&index| before.register(index) != hll.register(index))
        .count();
    Ok(AddSummary {
        elements,
        registers_changed,
    })
}

/// The report `footfall sketch add` prints.
#[must_use]
pub fn add_report(summary: &AddSummary, hll: &Hll) -> String {
    format!(
        "elements read: {}\nregisters changed: {}\nestimate: {}\nencoding: {}\n",
        summary.elements,
        summary.registers_changed,
        hll.count(),
        encoding_name(hll.encoding()),
    )
}

/// Runs a `footfall sketch` command: reads the files it names, reads elements from
/// `stdin` for `add`, and writes its report to `stdout`.
///
/// # Errors
///
/// A [`SketchCliError`] naming the file or stream that failed. `add` leaves FILE
/// untouched when it fails: the new contents go to a temporary file in the same
/// directory that replaces FILE only once complete.
pub fn run(
    command: &SketchCommand,
    stdin: impl BufRead,
    stdout: &mut impl Write,
) -> Result<(), SketchCliError> {
    let report = match command {
        SketchCommand::Inspect { file } => {
            let bytes = read(file)?;
            inspect(&bytes).map_err(|source| decode_error(file, source))?
        }
        SketchCommand::Count { files } => {
            let contents = files
                .iter()
                .map(|file| read(file))
                .collect::<Result<Vec<_>, _>>()?;
            let slices: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
            let estimate = count(&slices).map_err(|(index, source)| {
                decode_error(
                    files.get(index).map_or(Path::new("?"), PathBuf::as_path),
                    source,
                )
            })?;
            format!("{estimate}\n")
        }
        SketchCommand::Add { file } => {
            let mut hll = match std::fs::read(file) {
                Ok(bytes) => {
                    decode(&bytes)
                        .map_err(|source| decode_error(file, source))?
                        .hll
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => Hll::new(),
                Err(source) => {
                    return Err(SketchCliError::Read {
                        path: file.clone(),
                        source,
                    });
                }
            };
            let summary = add_lines(&mut hll, stdin).map_err(SketchCliError::Stdin)?;
            write_atomically(file, &hll.to_redis_bytes())?;
            add_report(&summary, &hll)
        }
    };
    stdout
        .write_all(report.as_bytes())
        .map_err(SketchCliError::Stdout)
}

/// Reads a whole file.
fn read(path: &Path) -> Result<Vec<u8>, SketchCliError> {
    std::fs::read(path).map_err(|source| SketchCliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Wraps a decoding error with the file it came from.
fn decode_error(path: &Path, source: SketchError) -> SketchCliError {
    SketchCliError::Decode {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` with `bytes` through a temporary file in the same directory, so a
/// failure never leaves a half-written sketch behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SketchCliError> {
    let write_error = |source| SketchCliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::NamedTempFile::new_in(directory).map_err(write_error)?;
    temporary.write_all(bytes).map_err(write_error)?;
    temporary.as_file().sync_all().map_err(write_error)?;
    temporary
        .persist(path)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

/// The lower-case name of an encoding.
fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Sparse => "sparse",
        Encoding::Dense => "dense",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sketch of `n` distinct elements named `prefix0`, `prefix1`, ….
    fn sketch_of(prefix: &str, n: usize) -> Hll {
        let mut hll = Hll::new();
        for i in 0..n {
            hll.add(format!("{prefix}{i}").as_bytes());
        }
        hll
    }

    /// A sketch whose sparse bytes end with 0x0a: one register set by hand so that
    /// 11 zero registers follow it, the ZERO opcode 0x0a.
    fn sketch_ending_with_newline_byte() -> Hll {
        let mut hll = Hll::new();
        // Register 16372 = 1; registers 16373..16384 (11 of them) stay zero.
        hll.add_hash(16372 | 1 << 14);
        hll
    }

    #[test]
    fn decode_tolerates_exactly_the_redis_cli_newline() {
        for hll in [sketch_of("a", 10), sketch_of("b", 50_000)] {
            let bytes = hll.to_redis_bytes();
            let plain = decode(&bytes).expect("valid");
            assert!(!plain.stripped_newline);
            assert_eq!(plain.hll, hll);

            let with_newline = [&bytes[..], b"\n"].concat();
            let decoded = decode(&with_newline).expect("valid after dropping the newline");
            assert!(decoded.stripped_newline);
            assert_eq!(decoded.hll, hll);
            assert_eq!(decoded.sketch_bytes, &bytes[..]);

            // Two newlines are not what redis-cli writes: an error.
            let two = [&bytes[..], b"\n\n"].concat();
            assert!(decode(&two).is_err());
        }
    }

    #[test]
    fn a_sketch_that_ends_with_0x0a_is_kept_whole() {
        let hll = sketch_ending_with_newline_byte();
        let bytes = hll.to_redis_bytes();
        assert_eq!(
            bytes.last(),
            Some(&b'\n'),
            "the test needs a sketch ending in 0x0a"
        );

        let decoded = decode(&bytes).expect("valid as is");
        assert!(!decoded.stripped_newline);
        assert_eq!(decoded.hll, hll);

        // And with redis-cli's newline after it, that newline alone goes.
        let with_newline = [&bytes[..], b"\n"].concat();
        let decoded = decode(&with_newline).expect("valid after dropping the newline");
        assert!(decoded.stripped_newline);
        assert_eq!(decoded.hll, hll);
    }

    #[test]
    fn decode_reports_the_error_of_the_bytes_as_they_are() {
        assert_eq!(
            decode(b"nonsense\n").map(|_| ()),
            Err(SketchError::TooShort { len: 9 })
        );
        let error = decode(b"HYLL\x07\0\0\0\0\0\0\0\0\0\0\0\n").map(|_| ());
        assert_eq!(error, Err(SketchError::BadEncoding { found: 7 }));
    }

    #[test]
    fn inspect_reports_every_field() {
        let hll = sketch_of("visitor", 3);
        let mut bytes = hll.to_redis_bytes();
        bytes.push(b'\n');
        let report = inspect(&bytes).expect("valid");
        let histogram = hll.histogram();
        let nonzero = REGISTERS - histogram[0] as usize;
        let max = (0..REGISTERS)
            .map(|index| hll.register(index))
            .max()
            .unwrap_or(0);
        assert!(report.contains("encoding: sparse\n"), "{report}");
        assert!(
            report.contains(&format!(
                "size: {} bytes (plus the trailing newline",
                bytes.len() - 1
            )),
            "{report}"
        );
        assert!(
            report.contains(&format!("registers non-zero: {nonzero} of 16384\n")),
            "{report}"
        );
        assert!(
            report.contains(&format!("max register: {max}\n")),
            "{report}"
        );
        assert!(report.contains(&format!(" 0:{}", histogram[0])), "{report}");
        assert!(
            report.contains("cached cardinality: 0 (marked stale"),
            "{report}"
        );
        assert!(
            report.contains(&format!("estimate: {}\n", hll.count())),
            "{report}"
        );
    }

    #[test]
    fn inspect_flags_a_valid_cache_that_lies() {
        let hll = sketch_of("visitor", 1000);
        let mut bytes = hll.to_redis_bytes();
        bytes[8..16].copy_from_slice(&7u64.to_le_bytes());
        let report = inspect(&bytes).expect("valid");
        assert!(
            report.contains("cached cardinality: 7 (marked valid"),
            "{report}"
        );
        assert!(report.contains("does NOT match"), "{report}");
        assert!(
            report.contains(&format!("estimate: {}\n", hll.count())),
            "{report}"
        );
    }

    #[test]
    fn count_is_the_union() {
        let a = sketch_of("a", 3000);
        let b = sketch_of("b", 200);
        let mut union = a.clone();
        union.merge(&b);
        let (bytes_a, bytes_b) = (
            a.to_redis_bytes(),
            [&b.to_redis_bytes()[..], b"\n"].concat(),
        );
        assert_eq!(count(&[&bytes_a, &bytes_b]), Ok(union.count()));
        assert_eq!(count(&[&bytes_a]), Ok(a.count()));
        assert_eq!(
            count(&[&bytes_a, b"HYLL"]),
            Err((1, SketchError::TooShort { len: 4 }))
        );
    }

    #[test]
    fn add_lines_splits_on_newlines_and_drops_carriage_returns() {
        let mut hll = Hll::new();
        let summary = add_lines(&mut hll, &b"alpha\r\nbeta\n\ngamma"[..]).expect("in-memory input");
        let mut expected = Hll::new();
        for element in [&b"alpha"[..], b"beta", b"", b"gamma"] {
            expected.add(element);
        }
        assert_eq!(hll, expected);
        assert_eq!(summary.elements, 4);
        // Four distinct elements in an empty sketch change four registers unless two
        // of them share one; count independently from the expected sketch.
        let changed = (0..REGISTERS)
            .filter(|&index| expected.register(index) != 0)
            .count();
        assert_eq!(summary.registers_changed, changed);

        // Adding the same elements again changes nothing.
        let again = add_lines(&mut hll, &b"alpha\nbeta\n\ngamma\n"[..]).expect("in-memory input");
        assert_eq!(
            again,
            AddSummary {
                elements: 4,
                registers_changed: 0
            }
        );
        assert!(add_report(&again, &hll).contains("registers changed: 0\n"));
    }

    #[test]
    fn run_add_then_count_and_inspect_through_files() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let file = directory.path().join("today.hll");
        let mut output = Vec::new();
        let add = SketchCommand::Add { file: file.clone() };
        run(&add, &b"x\ny\nz\n"[..], &mut output).expect("add to a new file");
        let text = String::from_utf8(output).expect("UTF-8");
        assert!(text.contains("elements read: 3\n"), "{text}");

        let written = std::fs::read(&file).expect("the file was written");
        let mut expected = Hll::new();
        for element in ["x", "y", "z"] {
            expected.add(element.as_bytes());
        }
        assert_eq!(written, expected.to_redis_bytes());

        let mut output = Vec::new();
        run(
            &SketchCommand::Count {
                files: vec![file.clone(), file.clone()],
            },
            &b""[..],
            &mut output,
        )
        .expect("count");
        assert_eq!(output, format!("{}\n", expected.count()).into_bytes());

        // A corrupt file is reported with its name and never overwritten.
        std::fs::write(&file, b"HYLL\x01").expect("write");
        let error = run(&add, &b"w\n"[..], &mut Vec::new()).expect_err("corrupt file");
        assert!(error.to_string().contains("today.hll"), "{error}");
        assert_eq!(std::fs::read(&file).expect("read"), b"HYLL\x01");

        let missing = directory.path().join("missing.hll");
        let error = run(
            &SketchCommand::Inspect { file: missing },
            &b""[..],
            &mut Vec::new(),
        )
        .expect_err("missing");
        assert!(matches!(error, SketchCliError::Read { .. }), "{error}");
    }
}
