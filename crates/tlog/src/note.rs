//! C2SP signed notes with Ed25519 keys (c2sp.org/signed-note), with key
//! strings in the format of Go's `golang.org/x/mod/sumdb/note`.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one or more
//! lines `— <key name> base64(key ID || signature)`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::Error;

/// Signature type byte for Ed25519 (c2sp.org/signed-note, "Signature types").
pub const KEY_TYPE_ED25519: u8 = 0x01;

/// Most signature lines [`open_note`] accepts (the spec requires at least 16;
/// Go's implementation allows 100).
pub const NOTE_SIGNATURES_MAX: usize = 100;

/// Largest note, in bytes, [`open_note`] and [`crate::Checkpoint::parse`]
/// accept.
pub const NOTE_BYTES_MAX: usize = 1 << 20;

/// Start of every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// The key ID: the first four bytes, big-endian, of
/// `SHA-256(name || 0x0A || key type || public key)`
/// (c2sp.org/signed-note, "Signatures"). Pass the type byte and the key
/// together, e.g. `0x01 || 32-byte Ed25519 key`.
pub fn key_id(name: &str, key_type_and_pubkey: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key_type_and_pubkey);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// A key name is non-empty and has no Unicode spaces and no `+`
/// (c2sp.org/signed-note, "Format").
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// Parses exactly 8 hex digits (either case, as Go's `ParseUint` does).
fn parse_key_id(hex: &str) -> Option<u32> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Splits `s` at the first `sep`; the rest is empty if `sep` is absent
/// (Go's `chop` in x/mod/sumdb/note).
fn chop(s: &str, sep: char) -> (&str, &str) {
    s.split_once(sep).unwrap_or((s, ""))
}

fn vkey_string(name: &str, id: u32, pubkey: &VerifyingKey) -> String {
    let mut typed = Vec::with_capacity(33);
    typed.push(KEY_TYPE_ED25519);
    typed.extend_from_slice(pubkey.as_bytes());
    format!("{name}+{id:08x}+{}", BASE64.encode(typed))
}

/// A note signing key: a name, its key ID and an Ed25519 private key.
pub struct Signer {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Generates a new Ed25519 key named `name` from the operating system's
    /// random number generator.
    ///
    /// Returns the signer, its private key string
    /// `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>` and its verifier key
    /// string `<name>+<id>+<base64(0x01 || public key)>`.
    pub fn generate(name: &str) -> Result<(Signer, String, String), Error> {
        if !is_valid_name(name) {
            return Err(Error::MalformedKey("invalid key name"));
        }
        let mut seed = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| Error::Random(e.to_string()))?;
        let signer = Signer::from_seed(name, seed);
        let mut typed = Vec::with_capacity(33);
        typed.push(KEY_TYPE_ED25519);
        typed.extend_from_slice(&seed);
        let skey = format!(
            "PRIVATE+KEY+{name}+{:08x}+{}",
            signer.key_id,
            BASE64.encode(&typed)
        );
        let vkey = signer.vkey();
        Ok((signer, skey, vkey))
    }

    /// Parses a private key string in the format of Go's
    /// `golang.org/x/mod/sumdb/note`:
    /// `PRIVATE+KEY+<name>+<8 hex id>+<base64(0x01 || 32-byte seed)>`.
    /// The ID must match the one computed from the derived public key.
    pub fn from_skey(skey: &str) -> Result<Signer, Error> {
        let (private, rest) = chop(skey, '+');
        let (key, rest) = chop(rest, '+');
        let (name, rest) = chop(rest, '+');
        let (hex, b64) = chop(rest, '+');
        if private != "PRIVATE" || key != "KEY" {
            return Err(Error::MalformedKey("missing PRIVATE+KEY prefix"));
        }
        if !is_valid_name(name) {
            return Err(Error::MalformedKey("invalid key name"));
        }
        let stated = parse_key_id(hex).ok_or(Error::MalformedKey("key id is not 8 hex digits"))?;
        let raw = BASE64
            .decode(b64)
            .map_err(|_| Error::MalformedKey("bad base64"))?;
        let (&kind, seed) = raw.split_first().ok_or(Error::MalformedKey("empty key"))?;
        if kind != KEY_TYPE_ED25519 {
            return Err(Error::UnsupportedKeyType(kind));
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| Error::MalformedKey("Ed25519 seed is not 32 bytes"))?;
        let signer = Signer::from_seed(name, seed);
        if signer.key_id != stated {
            return Err(Error::KeyIdMismatch {
                stated,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(&seed);
        let mut typed = Vec::with_capacity(33);
        typed.push(KEY_TYPE_ED25519);
        typed.extend_from_slice(key.verifying_key().as_bytes());
        Signer {
            name: name.to_string(),
            key_id: key_id(name, &typed),
            key,
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID (c2sp.org/signed-note, "Signatures").
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier key string `<name>+<id>+<base64(0x01 || public key)>`.
    pub fn vkey(&self) -> String {
        vkey_string(&self.name, self.key_id, &self.key.verifying_key())
    }
}

/// A note verification key: a name, its key ID and an Ed25519 public key.
#[derive(Clone, Debug)]
pub struct Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses a verifier key string `<name>+<8 hex id>+<base64(0x01 ||
    /// 32-byte public key)>` (Go's `golang.org/x/mod/sumdb/note` format).
    /// The ID must match the one computed per c2sp.org/signed-note.
    pub fn parse(vkey: &str) -> Result<Verifier, Error> {
        let (name, rest) = chop(vkey, '+');
        let (hex, b64) = chop(rest, '+');
        if !is_valid_name(name) {
            return Err(Error::MalformedKey("invalid key name"));
        }
        let stated = parse_key_id(hex).ok_or(Error::MalformedKey("key id is not 8 hex digits"))?;
        let raw = BASE64
            .decode(b64)
            .map_err(|_| Error::MalformedKey("bad base64"))?;
        let (&kind, pubkey) = raw.split_first().ok_or(Error::MalformedKey("empty key"))?;
        if kind != KEY_TYPE_ED25519 {
            return Err(Error::UnsupportedKeyType(kind));
        }
        let pubkey: [u8; 32] = pubkey
            .try_into()
            .map_err(|_| Error::MalformedKey("Ed25519 key is not 32 bytes"))?;
        let computed = key_id(name, &raw);
        if computed != stated {
            return Err(Error::KeyIdMismatch { stated, computed });
        }
        let key = VerifyingKey::from_bytes(&pubkey)
            .map_err(|_| Error::MalformedKey("not an Ed25519 public key"))?;
        Ok(Verifier {
            name: name.to_string(),
            key_id: stated,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID (c2sp.org/signed-note, "Signatures").
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier key string this verifier was parsed from, in canonical
    /// form (lowercase hex ID).
    pub fn vkey(&self) -> String {
        vkey_string(&self.name, self.key_id, &self.key)
    }

    fn verify(&self, text: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(text, &sig).is_ok()
    }
}

/// Checks the character rules of c2sp.org/signed-note, "Format": no ASCII
/// control characters other than newline (UTF-8 validity is given by `&str`).
fn has_forbidden_controls(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 && b != b'\n')
}

/// Signs `text` with every signer and returns the signed note: the text, a
/// blank line, and one line `— <name> base64(key ID || signature)` per
/// signer, in order (c2sp.org/signed-note, "Format").
///
/// `text` must end with a newline and must not contain ASCII control
/// characters other than newline; at least one signer is required.
pub fn sign_note(text: &str, signers: &[&Signer]) -> Result<String, Error> {
    if !text.ends_with('\n') {
        return Err(Error::MalformedNote("text does not end with a newline"));
    }
    if has_forbidden_controls(text) {
        return Err(Error::MalformedNote("text contains control characters"));
    }
    if text.len() > NOTE_BYTES_MAX {
        return Err(Error::MalformedNote("text too large"));
    }
    if signers.is_empty() {
        return Err(Error::NoSigners);
    }
    let mut out = String::with_capacity(text.len() + 1 + signers.len() * 128);
    out.push_str(text);
    out.push('\n');
    for s in signers {
        let sig = s.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + 64);
        raw.extend_from_slice(&s.key_id.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        out.push_str(SIG_PREFIX);
        out.push_str(&s.name);
        out.push(' ');
        out.push_str(&BASE64.encode(raw));
        out.push('\n');
    }
    Ok(out)
}

/// A note whose signatures have been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The note text, including its final newline.
    pub text: String,
    /// Name and key ID of every given verifier whose signature verified,
    /// each once, in the order their signatures appear.
    pub verified: Vec<(String, u32)>,
}

/// Parses a signed note and checks its signatures against `verifiers`
/// (c2sp.org/signed-note).
///
/// Parsing is strict: no control characters besides newline, the text is
/// everything up to the last blank line, every line after it is a
/// well-formed signature line ending in a newline, at most
/// [`NOTE_SIGNATURES_MAX`] of them. Signatures from keys not in
/// `verifiers` (name and ID both matching) are ignored. Every signature from
/// a known key must verify ([`Error::BadSignature`]), and at least one must
/// be present ([`Error::NoVerifiedSignature`]). Two verifiers sharing name
/// and ID make their signatures ambiguous ([`Error::AmbiguousVerifier`]).
pub fn open_note(note: &str, verifiers: &[&Verifier]) -> Result<Note, Error> {
    if note.len() > NOTE_BYTES_MAX {
        return Err(Error::MalformedNote("note too large"));
    }
    if has_forbidden_controls(note) {
        return Err(Error::MalformedNote("control characters"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(Error::MalformedNote("no blank line before signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(Error::MalformedNote("no signatures"));
    }
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(Error::MalformedNote(
            "signature block does not end with a newline",
        ));
    };

    let mut verified: Vec<(String, u32)> = Vec::new();
    for (count, line) in sigs.split('\n').enumerate() {
        if count >= NOTE_SIGNATURES_MAX {
            return Err(Error::MalformedNote("too many signatures"));
        }
        let line = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(Error::MalformedNote("signature line without em dash"))?;
        let (name, b64) = chop(line, ' ');
        if !is_valid_name(name) {
            return Err(Error::MalformedNote("invalid key name"));
        }
        let raw = BASE64
            .decode(b64)
            .map_err(|_| Error::MalformedNote("bad signature base64"))?;
        if raw.len() < 5 {
            return Err(Error::MalformedNote("signature too short"));
        }
        let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == name && v.key_id == id);
        let Some(v) = matching.next() else {
            continue; // Unknown key: ignored, per the spec.
        };
        if matching.next().is_some() {
            return Err(Error::AmbiguousVerifier {
                name: name.to_string(),
                key_id: id,
            });
        }
        if !v.verify(text.as_bytes(), &raw[4..]) {
            return Err(Error::BadSignature {
                name: name.to_string(),
                key_id: id,
            });
        }
        if !verified.iter().any(|(n, i)| n == name && *i == id) {
            verified.push((name.to_string(), id));
        }
    }
    if verified.is_empty() {
        return Err(Error::NoVerifiedSignature);
    }
    Ok(Note {
        text: text.to_string(),
        verified,
    })
}
