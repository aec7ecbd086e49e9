//! Device readings (PROTOCOL.md §2): a tagged COSE_Sign1 over a SenML pack in CBOR.
//!
//! [Reading::decode] performs every check that needs no ledger state, in the order the
//! protocol lists them, and classifies a failure as `malformed`, `bad_header` or `bad_senml`.
//! Each of the three CBOR items (the message, the protected header inside it, the SenML payload)
//! is first checked for well-formedness (definite lengths only, no tags but the outer 18, only
//! false, true and null as simple values, text in UTF-8, no trailing bytes, a depth limit), then
//! read once more head by head with `ciborium-ll`, its strings borrowed from the message: no
//! value tree is built, and a decoded reading keeps the message's bytes and where the protected
//! header and payload lie in them. The `Sig_structure` is encoded from those bytes exactly as
//! the device sent them. A test checks this decoder against the value-tree model it replaced
//! (`reading/model.rs`) on tens of thousands of valid and broken readings.
//!
//! Choices where the protocol leaves room, documented in docs/devices.md: a detached (nil)
//! payload is `bad_header`; SenML labels other than the thirteen of §2 and base version (-1)
//! and base sum (-6) are `bad_senml`; names must follow RFC 8428 §4.5.1; a negative resolved
//! time is `bad_senml`; non-finite numbers are `bad_senml`.

use crate::{Algorithm, DeviceId, Hash, PublicKey, Signature, device::SEQ_LIMIT, hash::sha256};
use base64::Engine as _;
use ciborium::Value;
use serde::Serialize;
use std::fmt;

/// Largest reading message, in bytes.
pub const MAX_READING_BYTES: usize = 16 * 1024;
/// Most records in one SenML pack.
pub const MAX_RECORDS: usize = 256;
/// Longest `vs` string value, in bytes.
pub const MAX_VS_BYTES: usize = 1024;
/// Longest `vd` data value, in bytes.
pub const MAX_VD_BYTES: usize = 4096;
/// Deepest nesting of CBOR arrays and maps accepted anywhere in a reading.
pub const MAX_CBOR_DEPTH: usize = 8;
/// The COSE header label of the sequence number.
pub const SEQ_LABEL: i64 = -65537;
/// CoAP content format of `application/senml+cbor`.
pub const SENML_CBOR_CONTENT_FORMAT: u64 = 112;
/// CBOR tag of COSE_Sign1.
const COSE_SIGN1_TAG: u64 = 18;

/// Why a reading is refused: the codes of PROTOCOL.md §3, plus `pool_full` when a node has no
/// room for it (a capacity refusal: the same reading may be sent again later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectCode {
    /// Not a well-formed tagged COSE_Sign1 with definite lengths within the limits.
    Malformed,
    /// Protected header not exactly as specified, or unprotected header not empty.
    BadHeader,
    /// No registered device has the `kid`.
    UnknownDevice,
    /// The device is not active.
    DeviceNotActive,
    /// `alg` differs from the device's registered algorithm.
    WrongAlgorithm,
    /// The signature does not verify with the device's current key.
    BadSignature,
    /// `seq` not above the device's highest accepted seq, or already pending.
    Replay,
    /// The payload is not a valid SenML pack.
    BadSenml,
    /// A record's time is too far after the node's clock.
    FutureTimestamp,
    /// The node's pool has no room (for all devices or for this one); retry later.
    PoolFull,
}

impl RejectCode {
    /// Every code, in the order of PROTOCOL.md §3, then the extensions.
    pub const ALL: [RejectCode; 10] = [
        Self::Malformed,
        Self::BadHeader,
        Self::UnknownDevice,
        Self::DeviceNotActive,
        Self::WrongAlgorithm,
        Self::BadSignature,
        Self::Replay,
        Self::BadSenml,
        Self::FutureTimestamp,
        Self::PoolFull,
    ];

    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadHeader => "bad_header",
            Self::UnknownDevice => "unknown_device",
            Self::DeviceNotActive => "device_not_active",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::BadSignature => "bad_signature",
            Self::Replay => "replay",
            Self::BadSenml => "bad_senml",
            Self::FutureTimestamp => "future_timestamp",
            Self::PoolFull => "pool_full",
        }
    }

    /// The byte that stands for the code in receipts (0 means accepted).
    pub fn tag(self) -> u8 {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0) as u8 + 1
    }

    /// The code of a receipt byte.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.get((tag as usize).checked_sub(1)?).copied()
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused reading: the code and a human explanation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ReadingError {
    /// The stable code.
    pub code: RejectCode,
    /// What exactly was wrong.
    pub detail: String,
}

impl ReadingError {
    /// An error with `code` and `detail`.
    pub fn new(code: RejectCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

fn malformed(d: impl Into<String>) -> ReadingError {
    ReadingError::new(RejectCode::Malformed, d)
}
fn bad_header(d: impl Into<String>) -> ReadingError {
    ReadingError::new(RejectCode::BadHeader, d)
}
fn bad_senml(d: impl Into<String>) -> ReadingError {
    ReadingError::new(RejectCode::BadSenml, d)
}

/// A SenML value.
#[derive(Clone, Debug, PartialEq)]
pub enum SenmlValue {
    /// `v`: a number.
    Number(f64),
    /// `vs`: a string.
    String(String),
    /// `vb`: a boolean.
    Bool(bool),
    /// `vd`: data.
    Data(Vec<u8>),
}

/// A resolved SenML record (base fields applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Resolved name (`bn` + `n`).
    pub name: String,
    /// Resolved time, seconds since the Unix epoch (`bt` + `t`).
    pub time: f64,
    /// Unit (`u`, else `bu`).
    pub unit: Option<String>,
    /// The value (`bv` added to `v`).
    pub value: SenmlValue,
}

impl Record {
    /// The record as the API shows it: `n`, `t`, `u` when present, and one of `v`, `vs`, `vb`,
    /// `vd` (base64url without padding, as in SenML JSON).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("n".into(), self.name.clone().into());
        m.insert("t".into(), json_number(self.time));
        if let Some(u) = &self.unit {
            m.insert("u".into(), u.clone().into());
        }
        let (k, v) = match &self.value {
            SenmlValue::Number(x) => ("v", json_number(*x)),
            SenmlValue::String(s) => ("vs", s.clone().into()),
            SenmlValue::Bool(b) => ("vb", (*b).into()),
            SenmlValue::Data(d) => (
                "vd",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(d)
                    .into(),
            ),
        };
        m.insert(k.into(), v);
        serde_json::Value::Object(m)
    }
}

fn json_number(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
    }
}

/// A reading that passed every state-free check of PROTOCOL.md §3. Its signature is not yet
/// verified: that needs the device's key from the ledger ([Reading::verify]).
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    bytes: Vec<u8>,
    id: Hash,
    device: DeviceId,
    algorithm: Algorithm,
    seq: u64,
    /// Where the protected header's bytes and the payload lie in `bytes`.
    protected: std::ops::Range<usize>,
    payload: std::ops::Range<usize>,
    signature: Signature,
    records: Vec<Record>,
}

impl Reading {
    /// Decodes and checks reading bytes as a device sent them.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReadingError> {
        Self::decode_hashed(bytes, sha256(bytes))
    }

    /// [Reading::decode] of bytes whose hash, the reading's id, is already known.
    pub(crate) fn decode_hashed(bytes: &[u8], id: Hash) -> Result<Self, ReadingError> {
        if bytes.len() > MAX_READING_BYTES {
            return Err(malformed(format!(
                "message is {} bytes, the limit is {MAX_READING_BYTES}",
                bytes.len()
            )));
        }
        well_formed(bytes, Some(COSE_SIGN1_TAG)).map_err(malformed)?;
        // Well-formed: what follows reads the heads in order and checks what they hold.
        let mut heads = Heads::new(bytes);
        let Head::Tag(COSE_SIGN1_TAG) = heads.next().map_err(malformed)? else {
            return Err(malformed("not a tagged COSE_Sign1 (tag 18)"));
        };
        let Head::Array(items) = heads.next().map_err(malformed)? else {
            return Err(malformed("COSE_Sign1 is not an array"));
        };
        if items != 4 {
            return Err(malformed("COSE_Sign1 must have 4 items"));
        }
        let Head::Bytes(protected) = heads.next().map_err(malformed)? else {
            return Err(malformed("protected header is not a byte string"));
        };
        let protected_span = heads.span_of_last(protected);
        let Head::Map(unprotected) = heads.next().map_err(malformed)? else {
            return Err(malformed("unprotected header is not a map"));
        };
        // Its entries are skipped here and refused below, after the protected header's checks.
        heads.skip(2 * unprotected).map_err(malformed)?;
        let payload = match heads.next().map_err(malformed)? {
            Head::Bytes(p) => p,
            Head::Simple(SIMPLE_NULL) => {
                return Err(bad_header("detached payloads are not allowed"));
            }
            _ => return Err(malformed("payload is not a byte string")),
        };
        let payload_span = heads.span_of_last(payload);
        let Head::Bytes(signature) = heads.next().map_err(malformed)? else {
            return Err(malformed("signature is not a byte string"));
        };
        let (algorithm, device, seq) = protected_header(protected)?;
        if unprotected != 0 {
            return Err(bad_header("the unprotected header must be an empty map"));
        }
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| malformed(format!("signature is {} bytes, not 64", signature.len())))?;
        let records = senml(payload)?;
        Ok(Self {
            bytes: bytes.to_vec(),
            id,
            device,
            algorithm,
            seq,
            protected: protected_span,
            payload: payload_span,
            signature: Signature(signature),
            records,
        })
    }

    /// The reading id: SHA-256 of the bytes as sent.
    pub fn id(&self) -> Hash {
        self.id
    }
    /// The bytes as sent.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The device (`kid`).
    pub fn device(&self) -> &DeviceId {
        &self.device
    }
    /// The signature algorithm (`alg`).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The resolved SenML records.
    pub fn records(&self) -> &[Record] {
        &self.records
    }
    /// The signature (64 bytes; `r‖s` for ES256).
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
    /// The latest resolved record time, in seconds since the Unix epoch.
    pub fn max_time(&self) -> f64 {
        self.records.iter().map(|r| r.time).fold(0.0, f64::max)
    }
    /// The earliest resolved record time, in seconds since the Unix epoch.
    pub fn min_time(&self) -> f64 {
        self.records
            .iter()
            .map(|r| r.time)
            .fold(f64::INFINITY, f64::min)
    }

    /// The bytes the signature covers, COSE's `Sig_structure` (RFC 9052 §4.4): `["Signature1",
    /// protected as sent, h'', payload]`, encoded with the shortest heads.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let protected = &self.bytes[self.protected.clone()];
        let payload = &self.bytes[self.payload.clone()];
        let mut out = Vec::with_capacity(protected.len() + payload.len() + 32);
        let mut encoder = ciborium_ll::Encoder::from(&mut out);
        let written = encoder
            .push(ciborium_ll::Header::Array(Some(4)))
            .and_then(|()| encoder.text(SIG_STRUCTURE_CONTEXT, None))
            .and_then(|()| encoder.bytes(protected, None))
            .and_then(|()| encoder.bytes(&[], None))
            .and_then(|()| encoder.bytes(payload, None));
        written.expect("writing to a Vec does not fail");
        out
    }

    /// Verifies the signature with `key`, which must be of the reading's algorithm.
    pub fn verify(&self, key: &PublicKey) -> bool {
        key.algorithm() == self.algorithm
            // COSE does not require low-S ECDSA signatures, so both forms are accepted.
            && key.verify(&self.signed_bytes(), &self.signature, false).is_ok()
    }
}

/// Checks the protected header: exactly alg, content type, kid and seq with valid values.
fn protected_header(bytes: &[u8]) -> Result<(Algorithm, DeviceId, u64), ReadingError> {
    well_formed(bytes, None).map_err(|e| malformed(format!("protected header: {e}")))?;
    let mut heads = Heads::new(bytes);
    let mut next = || {
        heads
            .next()
            .map_err(|e| malformed(format!("protected header: {e}")))
    };
    let Head::Map(entries) = next()? else {
        return Err(bad_header("protected header is not a map"));
    };
    let (mut alg, mut content_type, mut kid, mut seq) = (None, None, None, None);
    for _ in 0..entries {
        // Every label and value that is not what the protocol asks for ends the check, so a
        // container is never entered and the heads stay in step.
        let label = next()?.int();
        let value = next()?;
        let slot_taken = match label {
            Some(1) => alg
                .replace(match value.int() {
                    Some(-8) => Algorithm::Ed25519,
                    Some(-7) => Algorithm::P256,
                    _ => return Err(bad_header("alg must be -8 (EdDSA) or -7 (ES256)")),
                })
                .is_some(),
            Some(3) => {
                if value.int() != Some(SENML_CBOR_CONTENT_FORMAT as i128) {
                    return Err(bad_header("content type must be the integer 112"));
                }
                content_type.replace(()).is_some()
            }
            Some(4) => {
                let Head::Bytes(b) = value else {
                    return Err(bad_header("kid must be a byte string"));
                };
                let id = DeviceId::from_bytes(b)
                    .map_err(|_| bad_header("kid is not a valid device id"))?;
                kid.replace(id).is_some()
            }
            Some(l) if l == SEQ_LABEL as i128 => match value.int() {
                Some(s) if s >= 1 && s < SEQ_LIMIT as i128 => seq.replace(s as u64).is_some(),
                _ => return Err(bad_header("seq must be an integer with 1 <= seq < 2^53")),
            },
            _ => return Err(bad_header("unexpected label in the protected header")),
        };
        if slot_taken {
            return Err(bad_header("duplicate label in the protected header"));
        }
    }
    match (alg, content_type, kid, seq) {
        (Some(a), Some(()), Some(k), Some(s)) => Ok((a, k, s)),
        _ => Err(bad_header(
            "protected header must hold alg (1), content type (3), kid (4) and seq (-65537)",
        )),
    }
}

/// RFC 8428 §4.5.1: a name starts with a letter or digit, then letters, digits, `:./-_`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '/' | '-' | '_'))
}

/// Decodes and resolves a SenML pack (RFC 8428 §4.6) under PROTOCOL.md §2, as [Reading::decode]
/// does for its payload.
pub fn senml(payload: &[u8]) -> Result<Vec<Record>, ReadingError> {
    well_formed(payload, None).map_err(|e| malformed(format!("payload: {e}")))?;
    let mut heads = Heads::new(payload);
    let mut next = || heads.next().map_err(|e| malformed(format!("payload: {e}")));
    let Head::Array(records) = next()? else {
        return Err(bad_senml("the pack is not an array"));
    };
    if records == 0 || records > MAX_RECORDS {
        return Err(bad_senml(format!(
            "a pack holds 1 to {MAX_RECORDS} records, this one {records}"
        )));
    }
    let mut base_name = String::new();
    let mut base_time = 0.0;
    let mut base_unit: Option<&str> = None;
    let mut base_value: Option<f64> = None;
    let mut out = Vec::with_capacity(records);
    for i in 0..records {
        // As in the protected header, any label or value of the wrong kind ends the check.
        let Head::Map(fields) = next()? else {
            return Err(bad_senml(format!("record {i} is not a map")));
        };
        let wrong = |what: &str| bad_senml(format!("record {i}: {what} has the wrong type"));
        let mut seen = 0u16;
        let (mut name, mut time, mut unit, mut value) = (None, None, None, None);
        let mut values = 0;
        for _ in 0..fields {
            let label = next()?
                .int()
                .ok_or_else(|| bad_senml(format!("record {i}: labels must be integers")))?;
            let bit = match label {
                -5..=-2 => label + 5,
                0..=8 => label + 4,
                _ => return Err(bad_senml(format!("record {i}: unsupported label {label}"))),
            };
            if seen & (1 << bit) != 0 {
                return Err(bad_senml(format!(
                    "record {i}: label {label} appears twice"
                )));
            }
            seen |= 1 << bit;
            let v = next()?;
            match label {
                -2 => base_name = v.text().ok_or_else(|| wrong("bn"))?.to_owned(),
                -3 => base_time = v.number().ok_or_else(|| wrong("bt"))?,
                -4 => base_unit = Some(v.text().ok_or_else(|| wrong("bu"))?),
                -5 => base_value = Some(v.number().ok_or_else(|| wrong("bv"))?),
                0 => name = Some(v.text().ok_or_else(|| wrong("n"))?),
                1 => unit = Some(v.text().ok_or_else(|| wrong("u"))?),
                2 => {
                    values += 1;
                    value = Some(SenmlValue::Number(v.number().ok_or_else(|| wrong("v"))?));
                }
                3 => {
                    values += 1;
                    let s = v.text().ok_or_else(|| wrong("vs"))?;
                    if s.len() > MAX_VS_BYTES {
                        return Err(malformed(format!(
                            "record {i}: vs is {} bytes, the limit is {MAX_VS_BYTES}",
                            s.len()
                        )));
                    }
                    value = Some(SenmlValue::String(s.to_owned()));
                }
                4 => {
                    values += 1;
                    let b = match v {
                        Head::Simple(SIMPLE_FALSE) => false,
                        Head::Simple(SIMPLE_TRUE) => true,
                        _ => return Err(wrong("vb")),
                    };
                    value = Some(SenmlValue::Bool(b));
                }
                8 => {
                    values += 1;
                    let Head::Bytes(d) = v else {
                        return Err(wrong("vd"));
                    };
                    if d.len() > MAX_VD_BYTES {
                        return Err(malformed(format!(
                            "record {i}: vd is {} bytes, the limit is {MAX_VD_BYTES}",
                            d.len()
                        )));
                    }
                    value = Some(SenmlValue::Data(d.to_vec()));
                }
                6 => time = Some(v.number().ok_or_else(|| wrong("t"))?),
                // Sum (s) and update time (ut) are checked for type and kept in the signed bytes.
                _ => {
                    v.number().ok_or_else(|| wrong("s/ut"))?;
                }
            }
        }
        let name = format!("{base_name}{}", name.unwrap_or_default());
        if !valid_name(&name) {
            return Err(bad_senml(format!("record {i}: invalid name {name:?}")));
        }
        let time = base_time + time.unwrap_or(0.0);
        if time == 0.0 || !time.is_finite() {
            return Err(bad_senml(format!("record {i}: a record must have a time")));
        }
        if time < 0.0 {
            return Err(bad_senml(format!(
                "record {i}: times are absolute seconds since the Unix epoch"
            )));
        }
        let value = match (value, values) {
            (Some(SenmlValue::Number(x)), 1) => {
                let resolved = x + base_value.unwrap_or(0.0);
                // Two finite numbers can sum to infinity; the resolved value must be finite too.
                if !resolved.is_finite() {
                    return Err(bad_senml(format!(
                        "record {i}: v plus bv is not a finite number"
                    )));
                }
                SenmlValue::Number(resolved)
            }
            (Some(v), 1) => v,
            _ => {
                return Err(bad_senml(format!(
                    "record {i}: needs exactly one of v, vs, vb, vd"
                )));
            }
        };
        out.push(Record {
            name,
            time,
            unit: unit.or(base_unit).map(str::to_owned),
            value,
        });
    }
    Ok(out)
}

/// The simple values CBOR gives false, true and null (RFC 8949 §3.3).
const SIMPLE_FALSE: u8 = 20;
const SIMPLE_TRUE: u8 = 21;
const SIMPLE_NULL: u8 = 22;

/// The context string of a COSE_Sign1 `Sig_structure` (RFC 9052 §4.4).
const SIG_STRUCTURE_CONTEXT: &str = "Signature1";

/// One CBOR head as [Heads] reads it, with a string's content borrowed from the input.
#[derive(Clone, Copy, Debug)]
enum Head<'a> {
    Int(i128),
    Float(f64),
    Simple(u8),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(usize),
    Map(usize),
    Tag(u64),
    /// An indefinite-length string, array or map, or a break.
    Indefinite,
}

impl<'a> Head<'a> {
    fn int(self) -> Option<i128> {
        match self {
            Self::Int(i) => Some(i),
            _ => None,
        }
    }

    /// A finite number, integer or float.
    fn number(self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(i as f64),
            Self::Float(f) if f.is_finite() => Some(f),
            _ => None,
        }
    }

    fn text(self) -> Option<&'a str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Reads CBOR heads in order, one `ciborium-ll` decoder per head, and a string's content by
/// borrowing it: a reading is decoded without building a value tree or copying its strings
/// (the records' names, units and values are the only copies).
struct Heads<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Heads<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The next head; text must be valid UTF-8.
    fn next(&mut self) -> Result<Head<'a>, &'static str> {
        use ciborium_ll::{Decoder, Header};
        let mut decoder = Decoder::from(&self.bytes[self.pos..]);
        let header = decoder.pull().map_err(|_| "truncated or invalid CBOR")?;
        self.pos += decoder.offset();
        Ok(match header {
            Header::Positive(n) => Head::Int(n.into()),
            Header::Negative(n) => Head::Int(-1 - i128::from(n)),
            Header::Float(f) => Head::Float(f),
            Header::Simple(s) => Head::Simple(s),
            Header::Bytes(Some(n)) => Head::Bytes(self.take(n)?),
            Header::Text(Some(n)) => Head::Text(
                std::str::from_utf8(self.take(n)?).map_err(|_| "text is not valid UTF-8")?,
            ),
            Header::Array(Some(n)) => Head::Array(n),
            Header::Map(Some(n)) => Head::Map(n),
            Header::Tag(t) => Head::Tag(t),
            Header::Break
            | Header::Bytes(None)
            | Header::Text(None)
            | Header::Array(None)
            | Header::Map(None) => Head::Indefinite,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("truncated string")?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Where `last`, the string the last head held, lies in the input.
    fn span_of_last(&self, last: &[u8]) -> std::ops::Range<usize> {
        self.pos - last.len()..self.pos
    }

    /// Skips `items` whole items of well-formed input.
    fn skip(&mut self, items: usize) -> Result<(), &'static str> {
        let mut owed = items;
        while owed > 0 {
            owed -= 1;
            owed += match self.next()? {
                Head::Array(n) => n,
                Head::Map(n) => n.checked_mul(2).ok_or("map too large")?,
                Head::Tag(_) => 1,
                _ => 0,
            };
        }
        Ok(())
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

/// Checks that `bytes` hold exactly one well-formed CBOR item with definite lengths, nested at
/// most [MAX_CBOR_DEPTH] deep, with no tag except `root_tag` on the outermost item, only the
/// simple values false, true and null, and text in UTF-8. Walks the item heads iteratively.
fn well_formed(bytes: &[u8], root_tag: Option<u64>) -> Result<(), String> {
    let mut heads = Heads::new(bytes);
    // Items still owed by each open array or map.
    let mut open: Vec<usize> = Vec::new();
    let mut first = true;
    loop {
        let head = heads.next()?;
        let at_root = std::mem::replace(&mut first, false);
        let children = match head {
            Head::Int(_) | Head::Float(_) | Head::Bytes(_) | Head::Text(_) => 0,
            Head::Simple(SIMPLE_FALSE..=SIMPLE_NULL) => 0,
            Head::Simple(s) => return Err(format!("simple value {s} is not allowed")),
            Head::Tag(t) if at_root && root_tag == Some(t) => {
                first = false;
                // The tagged item follows; it is the root's content, not a sibling.
                continue;
            }
            Head::Tag(t) => return Err(format!("tag {t} is not allowed here")),
            Head::Indefinite => return Err("indefinite lengths are not allowed".into()),
            Head::Array(n) => n,
            Head::Map(n) => n.checked_mul(2).ok_or("map too large")?,
        };
        if children > heads.remaining() {
            return Err("truncated array or map".into());
        }
        if children > 0 {
            if open.len() >= MAX_CBOR_DEPTH {
                return Err(format!("nested deeper than {MAX_CBOR_DEPTH}"));
            }
            open.push(children);
            continue;
        }
        // One item done: close every container it completes.
        loop {
            match open.last_mut() {
                None => {
                    return if heads.remaining() == 0 {
                        Ok(())
                    } else {
                        Err("trailing bytes after the item".into())
                    };
                }
                Some(n) => {
                    *n -= 1;
                    if *n > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

/// Builds and signs readings the way a device does (used by the simulator, tests and the
/// client crate): a SenML pack of `records`, signed with `key` under `device` and `seq`.
pub mod sign {
    use super::*;
    use crate::SecretKey;

    /// A record to sign: name, time (seconds since the Unix epoch), optional unit and value.
    #[derive(Clone, Debug)]
    pub struct NewRecord {
        /// Name.
        pub name: String,
        /// Time, seconds since the Unix epoch.
        pub time: f64,
        /// Unit.
        pub unit: Option<String>,
        /// Value.
        pub value: SenmlValue,
    }

    fn cbor_number(x: f64) -> Value {
        if x.fract() == 0.0 && x.abs() < 9.0e15 {
            Value::Integer((x as i64).into())
        } else {
            Value::Float(x)
        }
    }

    /// The SenML CBOR pack of `records` (each record carries its own name and time).
    pub fn senml_pack(records: &[NewRecord]) -> Vec<u8> {
        let pack: Vec<Value> = records
            .iter()
            .map(|r| {
                let mut m = vec![
                    (Value::Integer(0.into()), Value::Text(r.name.clone())),
                    (Value::Integer(6.into()), cbor_number(r.time)),
                ];
                if let Some(u) = &r.unit {
                    m.push((Value::Integer(1.into()), Value::Text(u.clone())));
                }
                let (label, v) = match &r.value {
                    SenmlValue::Number(x) => (2, cbor_number(*x)),
                    SenmlValue::String(s) => (3, Value::Text(s.clone())),
                    SenmlValue::Bool(b) => (4, Value::Bool(*b)),
                    SenmlValue::Data(d) => (8, Value::Bytes(d.clone())),
                };
                m.push((Value::Integer(label.into()), v));
                Value::Map(m)
            })
            .collect();
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Array(pack), &mut out).expect("writing to a Vec");
        out
    }

    /// Signs `payload` (a SenML CBOR pack) as reading `seq` of `device`.
    pub fn sign_payload(key: &SecretKey, device: &DeviceId, seq: u64, payload: Vec<u8>) -> Vec<u8> {
        sign_payload_with(key.algorithm(), device, seq, payload, |tbs| key.sign(tbs))
    }

    /// Signs `payload` as reading `seq` of `device` with any signer of `alg`: `sign` is given
    /// the COSE `Sig_structure` bytes and returns their signature.
    pub fn sign_payload_with(
        alg: Algorithm,
        device: &DeviceId,
        seq: u64,
        payload: Vec<u8>,
        sign: impl FnOnce(&[u8]) -> Signature,
    ) -> Vec<u8> {
        use coset::{CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
        let alg = match alg {
            Algorithm::Ed25519 => iana::Algorithm::EdDSA,
            Algorithm::P256 => iana::Algorithm::ES256,
        };
        let protected = HeaderBuilder::new()
            .algorithm(alg)
            .content_format(iana::CoapContentFormat::SenmlCbor)
            .key_id(device.as_str().as_bytes().to_vec())
            .value(SEQ_LABEL, Value::Integer(seq.into()))
            .build();
        CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(&[], |tbs| sign(tbs).0.to_vec())
            .build()
            .to_tagged_vec()
            .expect("encoding a COSE_Sign1")
    }

    /// Signs a reading of `records`.
    pub fn sign_reading(
        key: &SecretKey,
        device: &DeviceId,
        seq: u64,
        records: &[NewRecord],
    ) -> Vec<u8> {
        sign_payload(key, device, seq, senml_pack(records))
    }
}

#[cfg(test)]
mod model;

#[cfg(test)]
mod tests {
    use super::sign::*;
    use super::*;
    use crate::SecretKey;

    fn record(name: &str, v: f64) -> NewRecord {
        NewRecord {
            name: name.into(),
            time: 1_760_000_000.5,
            unit: Some("Cel".into()),
            value: SenmlValue::Number(v),
        }
    }

    #[test]
    fn signed_readings_decode_and_verify() {
        for alg in [Algorithm::Ed25519, Algorithm::P256] {
            let key = SecretKey::generate(alg);
            let dev: DeviceId = "dev-1".parse().unwrap();
            let bytes = sign_reading(&key, &dev, 7, &[record("temp", 21.5)]);
            let r = Reading::decode(&bytes).unwrap();
            assert_eq!(r.device(), &dev);
            assert_eq!(r.seq(), 7);
            assert_eq!(r.algorithm(), alg);
            assert_eq!(r.id(), sha256(&bytes));
            assert_eq!(r.records()[0].value, SenmlValue::Number(21.5));
            assert!(r.verify(&key.public_key()));
            assert!(!r.verify(&SecretKey::generate(alg).public_key()));
        }
    }

    fn code(bytes: &[u8]) -> RejectCode {
        Reading::decode(bytes).unwrap_err().code
    }

    fn cbor(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn sign1(protected: Vec<u8>, unprotected: Value, payload: Value) -> Vec<u8> {
        cbor(&Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected),
                unprotected,
                payload,
                Value::Bytes(vec![0; 64]),
            ])),
        ))
    }

    fn header(entries: Vec<(i64, Value)>) -> Vec<u8> {
        cbor(&Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::Integer(k.into()), v))
                .collect(),
        ))
    }

    fn good_header() -> Vec<(i64, Value)> {
        vec![
            (1, Value::Integer((-8).into())),
            (3, Value::Integer(112.into())),
            (4, Value::Bytes(b"d1".to_vec())),
            (SEQ_LABEL, Value::Integer(1.into())),
        ]
    }

    #[test]
    fn refusals_are_classified() {
        let payload = Value::Bytes(senml_pack(&[record("t", 1.0)]));
        let ok = sign1(header(good_header()), Value::Map(vec![]), payload.clone());
        assert!(Reading::decode(&ok).is_ok());
        // malformed
        assert_eq!(code(&ok[..ok.len() - 1]), RejectCode::Malformed);
        assert_eq!(code(&ok[1..]), RejectCode::Malformed); // untagged
        assert_eq!(code(&[ok.clone(), vec![0]].concat()), RejectCode::Malformed);
        assert_eq!(
            code(&vec![0u8; MAX_READING_BYTES + 1]),
            RejectCode::Malformed
        );
        let mut indefinite = ok.clone();
        indefinite[1] = 0x9f; // array(4) -> indefinite array
        indefinite.push(0xff);
        assert_eq!(code(&indefinite), RejectCode::Malformed);
        // bad_header
        let mut h = good_header();
        h[0].1 = Value::Integer((-35).into());
        assert_eq!(
            code(&sign1(header(h), Value::Map(vec![]), payload.clone())),
            RejectCode::BadHeader
        );
        let mut h = good_header();
        h.pop();
        assert_eq!(
            code(&sign1(header(h), Value::Map(vec![]), payload.clone())),
            RejectCode::BadHeader
        );
        let mut h = good_header();
        h.push((1, Value::Integer((-8).into())));
        assert_eq!(
            code(&sign1(header(h), Value::Map(vec![]), payload.clone())),
            RejectCode::BadHeader
        );
        let mut h = good_header();
        h[3].1 = Value::Integer((1i64 << 53).into());
        assert_eq!(
            code(&sign1(header(h), Value::Map(vec![]), payload.clone())),
            RejectCode::BadHeader
        );
        let unprotected = Value::Map(vec![(Value::Integer(4.into()), Value::Bytes(vec![1]))]);
        assert_eq!(
            code(&sign1(header(good_header()), unprotected, payload.clone())),
            RejectCode::BadHeader
        );
        assert_eq!(
            code(&sign1(
                header(good_header()),
                Value::Map(vec![]),
                Value::Null
            )),
            RejectCode::BadHeader
        );
        // bad_senml
        let undated = NewRecord {
            time: 0.0,
            ..record("t", 1.0)
        };
        for pack in [
            cbor(&Value::Array(vec![])),
            senml_pack(&[undated]),
            senml_pack(&[record("", 1.0)]),
            senml_pack(&[record("bad name!", 1.0)]),
            cbor(&Value::Map(vec![])),
        ] {
            assert_eq!(
                code(&sign1(
                    header(good_header()),
                    Value::Map(vec![]),
                    Value::Bytes(pack)
                )),
                RejectCode::BadSenml
            );
        }
    }

    #[test]
    fn base_fields_resolve() {
        let pack = cbor(&Value::Array(vec![
            Value::Map(vec![
                (
                    Value::Integer((-2).into()),
                    Value::Text("urn:dev:1:".into()),
                ),
                (
                    Value::Integer((-3).into()),
                    Value::Integer(1_700_000_000.into()),
                ),
                (Value::Integer((-4).into()), Value::Text("W".into())),
                (Value::Integer((-5).into()), Value::Float(100.0)),
                (Value::Integer(0.into()), Value::Text("power".into())),
                (Value::Integer(2.into()), Value::Float(1.5)),
            ]),
            Value::Map(vec![
                (Value::Integer(0.into()), Value::Text("on".into())),
                (Value::Integer(6.into()), Value::Integer(10.into())),
                (Value::Integer(4.into()), Value::Bool(true)),
            ]),
        ]));
        let r = senml(&pack).unwrap();
        assert_eq!(r[0].name, "urn:dev:1:power");
        assert_eq!(r[0].time, 1_700_000_000.0);
        assert_eq!(r[0].unit.as_deref(), Some("W"));
        assert_eq!(r[0].value, SenmlValue::Number(101.5));
        assert_eq!(r[1].name, "urn:dev:1:on");
        assert_eq!(r[1].time, 1_700_000_010.0);
        assert_eq!(r[1].value, SenmlValue::Bool(true));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut deep = vec![0x81u8; 100_000];
        deep.push(0x00);
        assert!(well_formed(&deep, None).is_err());
    }

    /// A random CBOR value for the model test: mostly what readings hold, often not.
    fn random_value(rng: &mut impl rand::Rng, depth: usize) -> Value {
        let ints = [
            0i64, 1, -1, 2, 3, 4, 6, 8, 112, -2, -3, -4, -5, -6, -7, -8, SEQ_LABEL,
        ];
        match rng.gen_range(0..if depth == 0 { 8 } else { 10 }) {
            0 => Value::Integer(ints[rng.gen_range(0..ints.len())].into()),
            1 => Value::Integer(rng.r#gen::<i64>().into()),
            2 => Value::Float(
                [
                    1.5,
                    0.0,
                    -2.0,
                    1.7e9,
                    f64::NAN,
                    f64::INFINITY,
                    f64::MAX,
                    1e308,
                ][rng.gen_range(0..8)],
            ),
            3 => Value::Text(
                ["t", "", "bad name!", "urn:dev:1:", "Cel", "\u{e9}"][rng.gen_range(0..6)].into(),
            ),
            4 => Value::Bytes((0..rng.gen_range(0..70)).map(|_| rng.r#gen()).collect()),
            5 => Value::Bool(rng.r#gen()),
            6 => Value::Null,
            7 => Value::Integer(rng.gen_range(1_600_000_000i64..1_800_000_000).into()),
            8 => Value::Array(
                (0..rng.gen_range(0..4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Map(
                (0..rng.gen_range(0..5))
                    .map(|_| (random_value(rng, 0), random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    /// A SenML pack, a protected header or a whole COSE_Sign1 that is close to right: good
    /// parts with random ones swapped in, entries dropped or added.
    fn near_miss(rng: &mut impl rand::Rng) -> Vec<u8> {
        let key = SecretKey::generate(Algorithm::Ed25519);
        let mut records: Vec<NewRecord> = (0..rng.gen_range(1..4))
            .map(|i| NewRecord {
                name: format!("r{i}"),
                time: 1_760_000_000.0 + i as f64,
                unit: rng.r#gen::<bool>().then(|| "Cel".into()),
                value: match rng.gen_range(0..4) {
                    0 => SenmlValue::Number(rng.r#gen::<f64>() * 100.0),
                    1 => SenmlValue::String("on".into()),
                    2 => SenmlValue::Bool(rng.r#gen()),
                    _ => SenmlValue::Data(vec![7; rng.gen_range(0..9)]),
                },
            })
            .collect();
        if rng.gen_ratio(1, 4) {
            records.truncate(1);
        }
        let signed = sign_reading(&key, &"d1".parse().unwrap(), 3, &records);
        let Value::Tag(18, inner) = ciborium::from_reader::<Value, _>(signed.as_slice()).unwrap()
        else {
            unreachable!()
        };
        let Value::Array(mut items) = *inner else {
            unreachable!()
        };
        // Change the protected header, the unprotected one, the SenML pack or the item list, or
        // nothing.
        match rng.gen_range(0..6) {
            0 => {
                let mut h = good_header();
                match rng.gen_range(0..3) {
                    0 => h[rng.gen_range(0..4)].1 = random_value(rng, 1),
                    1 => {
                        h.remove(rng.gen_range(0..4));
                    }
                    _ => h.push((
                        [1, 3, 4, 5, SEQ_LABEL][rng.gen_range(0..5)],
                        random_value(rng, 1),
                    )),
                }
                items[0] = Value::Bytes(header(h));
            }
            1 => items[1] = random_value(rng, 1),
            2 => {
                let Value::Bytes(pack) = &items[2] else {
                    unreachable!()
                };
                let Value::Array(mut pack) =
                    ciborium::from_reader::<Value, _>(pack.as_slice()).unwrap()
                else {
                    unreachable!()
                };
                let Value::Map(fields) = &mut pack[0] else {
                    unreachable!()
                };
                let labels = [-6i64, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
                match rng.gen_range(0..3) {
                    0 if !fields.is_empty() => {
                        let i = rng.gen_range(0..fields.len());
                        fields[i].1 = random_value(rng, 1);
                    }
                    1 if !fields.is_empty() => {
                        fields.remove(rng.gen_range(0..fields.len()));
                    }
                    _ => fields.push((
                        Value::Integer(labels[rng.gen_range(0..labels.len())].into()),
                        random_value(rng, 1),
                    )),
                }
                items[2] = match rng.gen_range(0..8) {
                    0 => random_value(rng, 2),
                    _ => Value::Bytes(cbor(&Value::Array(pack))),
                };
            }
            3 => items[3] = random_value(rng, 0),
            4 => {
                if rng.r#gen::<bool>() {
                    items.pop();
                } else {
                    items.push(random_value(rng, 1));
                }
            }
            _ => {}
        }
        let whole = Value::Array(items);
        if rng.gen_ratio(1, 10) {
            cbor(&whole)
        } else {
            cbor(&Value::Tag(18, Box::new(whole)))
        }
    }

    /// The one-pass decoder refuses exactly what the value-tree model ([model]) refuses, with
    /// the same code, and decodes the rest to the same reading and signed bytes: valid
    /// readings, readings with a part swapped for a random value, and both with bytes flipped,
    /// inserted or cut, in the outer message or inside a header or the payload.
    #[test]
    fn one_pass_decoder_agrees_with_the_value_tree_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_128);
        let (mut accepted, mut refused) = (0, std::collections::BTreeMap::new());
        for case in 0..30_000 {
            let mut bytes = near_miss(&mut rng);
            for _ in 0..rng.gen_range(0..3) {
                let i = rng.gen_range(0..bytes.len());
                match rng.gen_range(0..5) {
                    0 => bytes[i] ^= 1 << rng.gen_range(0..8),
                    1 => {
                        bytes[i] =
                            [0x9f, 0x5f, 0x7f, 0xff, 0xf7, 0xc2, 0x80, 0xa0][rng.gen_range(0..8)]
                    }
                    2 => bytes.insert(i, rng.r#gen()),
                    3 => bytes.truncate(i),
                    _ => {}
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let ours = Reading::decode(&bytes);
            let model = model::decode(&bytes);
            match (&ours, &model) {
                (Ok(r), Ok(m)) => {
                    accepted += 1;
                    assert_eq!(
                        (
                            r.device(),
                            r.algorithm(),
                            r.seq(),
                            r.signature(),
                            r.records()
                        ),
                        (
                            &m.device,
                            m.algorithm,
                            m.seq,
                            &m.signature,
                            m.records.as_slice()
                        ),
                        "case {case}: {}",
                        hex::encode(&bytes)
                    );
                    assert_eq!(
                        r.signed_bytes(),
                        model::signed_bytes(&m.protected, &m.payload),
                        "case {case}"
                    );
                }
                (Err(e), Err(m)) => {
                    assert_eq!(
                        e.code,
                        m.code,
                        "case {case}: {e} / {m}: {}",
                        hex::encode(&bytes)
                    );
                    // The model leaves invalid UTF-8 to ciborium, which words it its own way.
                    if e.detail != m.detail {
                        assert!(e.detail.contains("UTF-8"), "case {case}: {e} / {m}");
                    }
                    *refused.entry(e.code).or_insert(0) += 1;
                }
                _ => panic!("case {case}: {ours:?} / {model:?}: {}", hex::encode(&bytes)),
            }
        }
        // The cases reach every check: some readings pass, each kind of refusal is seen.
        assert!(accepted > 1_000, "{accepted} accepted, {refused:?}");
        for code in [
            RejectCode::Malformed,
            RejectCode::BadHeader,
            RejectCode::BadSenml,
        ] {
            assert!(
                refused.get(&code).copied().unwrap_or(0) > 500,
                "{refused:?}"
            );
        }
    }

    #[test]
    fn reject_codes_roundtrip_tags() {
        for c in RejectCode::ALL {
            assert_eq!(RejectCode::from_tag(c.tag()), Some(c));
        }
        assert_eq!(RejectCode::from_tag(0), None);
    }
}
