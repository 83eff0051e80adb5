//! Reading a manifests file: from a path or stdin, bounded by `--manifests-max-size`, refusing
//! what is not a regular file before it is opened; and the fingerprint that tells a changed
//! file.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::records::ClusterObject;
use crate::source::manifests::parse::parse;

/// Where the manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") {
            Input::Stdin
        } else {
            Input::File(arg.to_owned())
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(path) => write!(f, "{}", path.display()),
            Input::Stdin => write!(f, "<stdin>"),
        }
    }
}

/// The objects of an input, read whole.
#[derive(Debug)]
pub struct Loaded {
    pub objects: Vec<ClusterObject>,
    /// The input holds nothing but blank lines and comments: most likely a file being
    /// rewritten (`: > file`, a failed write), not a cluster emptied on purpose, which is an
    /// empty `List`.
    pub blank: bool,
}

/// Reads and parses the whole input; the error is one line naming the input and the place. A
/// file must be a regular file of at most `max_size` bytes, which is checked before reading.
pub fn load(input: &Input, max_size: u64) -> Result<Loaded, String> {
    let too_large = |size: u64| {
        format!(
            "{input}: {} is larger than --manifests-max-size ({})",
            bytes(size),
            bytes(max_size)
        )
    };
    let mut text = String::new();
    let read = match input {
        Input::File(path) => {
            let meta = std::fs::metadata(path).map_err(|e| format!("{input}: cannot read: {e}"))?;
            if !meta.is_file() {
                return Err(format!(
                    "{input}: not a regular file ({}); give a file, or - for standard input",
                    file_type(&meta)
                ));
            }
            if meta.len() > max_size {
                return Err(too_large(meta.len()));
            }
            // Room for the whole file at once: through `take`, `read_to_string` no longer knows
            // the size, and grew the text by doubling — each step a copy, the last of a file of
            // a million pods (570 MB) briefly holding both.
            text.reserve(usize::try_from(meta.len()).unwrap_or(0));
            std::fs::File::open(path)
                .and_then(|f| f.take(max_size.saturating_add(1)).read_to_string(&mut text))
        }
        Input::Stdin => std::io::stdin()
            .take(max_size.saturating_add(1))
            .read_to_string(&mut text),
    };
    read.map_err(|e| format!("{input}: cannot read: {e}"))?;
    if text.len() as u64 > max_size {
        return Err(too_large(text.len() as u64));
    }
    let blank = text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'));
    let objects = parse(&text).map_err(|e| format!("{input}: {e}"))?;
    Ok(Loaded { objects, blank })
}

/// `1.5 GiB`, `300 MiB`, `12 KiB`, `80 bytes`.
pub(super) fn bytes(n: u64) -> String {
    let units = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in units {
        if n >= 1 << shift {
            let value = n as f64 / (1u64 << shift) as f64;
            return if value.fract() == 0.0 {
                format!("{value} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

/// What kind of file something that is not a regular file is.
fn file_type(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    modified: Option<SystemTime>,
    /// The inode's change time, in nanoseconds: moves with every write even where the
    /// modification time's resolution is coarse.
    changed: i128,
    len: u64,
    inode: u64,
}

/// `None` when the file cannot be stat'ed (for example while it is being replaced).
pub fn fingerprint(path: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    // Follows symlinks, so a ConfigMap mount's swapped `..data` link counts as a change.
    let meta = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: meta.modified().ok(),
        changed: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        len: meta.len(),
        inode: meta.ino(),
    })
}
