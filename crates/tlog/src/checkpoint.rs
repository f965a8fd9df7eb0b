//! C2SP tlog-checkpoint: the signed tree head of a log, as the text of a
//! signed note.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::hash::{Hash, HASH_SIZE};
use crate::note::{open_note, Verifier, NOTE_BYTES_MAX};
use crate::Error;

/// The body of a checkpoint (c2sp.org/tlog-checkpoint, "Note text").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, first line; non-empty.
    pub origin: String,
    /// Number of leaves in the tree, second line.
    pub size: u64,
    /// `MTH(D[0:size])`, third line, base64.
    pub root: Hash,
    /// Optional extension lines after the root, each non-empty, without
    /// their newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, decimal size, base64 root and extension lines,
    /// each followed by a newline.
    ///
    /// Only a checkpoint that [`Checkpoint::parse`] would accept (non-empty
    /// lines without newlines or control characters) round-trips.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for ext in &self.extensions {
            out.push_str(ext);
            out.push('\n');
        }
        out
    }

    /// Parses checkpoint note text strictly (c2sp.org/tlog-checkpoint, "Note
    /// text"): it ends with a newline, has at least three non-empty lines and
    /// no control characters besides newlines, the size is decimal without
    /// leading zeros and fits `u64`, the root is canonical standard base64
    /// of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Checkpoint, Error> {
        if text.len() > NOTE_BYTES_MAX {
            return Err(Error::MalformedCheckpoint("too large"));
        }
        if text.bytes().any(|b| b < 0x20 && b != b'\n') {
            return Err(Error::MalformedCheckpoint("control characters"));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(Error::MalformedCheckpoint("does not end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(Error::MalformedCheckpoint("empty origin"));
        }
        let size = lines
            .next()
            .ok_or(Error::MalformedCheckpoint("missing size"))?;
        let size = parse_size(size).ok_or(Error::MalformedCheckpoint(
            "size is not a canonical decimal u64",
        ))?;
        let root = lines
            .next()
            .ok_or(Error::MalformedCheckpoint("missing root hash"))?;
        let root = BASE64
            .decode(root)
            .map_err(|_| Error::MalformedCheckpoint("root hash is not base64"))?;
        let root: Hash = root
            .try_into()
            .map_err(|_| Error::MalformedCheckpoint("root hash is not 32 bytes"))?;
        let mut extensions = Vec::new();
        for ext in lines {
            if ext.is_empty() {
                return Err(Error::MalformedCheckpoint("empty extension line"));
            }
            extensions.push(ext.to_string());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

const _: () = assert!(HASH_SIZE == 32);

/// ASCII decimal, no sign, no leading zeros except `0` itself.
fn parse_size(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty()
        || b.len() > 20
        || !b.iter().all(u8::is_ascii_digit)
        || (b.len() > 1 && b[0] == b'0')
    {
        return None;
    }
    s.parse().ok()
}

/// Opens a signed checkpoint: verifies the note with `verifier`
/// ([`open_note`]), requires the origin line to equal the verifier's key
/// name ([`Error::OriginMismatch`]), and parses the text
/// ([`Checkpoint::parse`]).
pub fn open_checkpoint(note: &str, verifier: &Verifier) -> Result<Checkpoint, Error> {
    let opened = open_note(note, &[verifier])?;
    let checkpoint = Checkpoint::parse(&opened.text)?;
    if checkpoint.origin != verifier.name() {
        return Err(Error::OriginMismatch {
            origin: checkpoint.origin,
            expected: verifier.name().to_string(),
        });
    }
    Ok(checkpoint)
}
