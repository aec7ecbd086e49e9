//! Device identity (PROTOCOL.md §1): the device id, its lifecycle status, the per-device
//! sequence number and the operator's free-form metadata.

use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, ReadExt, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{collections::BTreeMap, fmt, str::FromStr};

/// Longest device id, in characters.
pub const DEVICE_ID_MAX_LEN: usize = 64;
/// Largest sequence number (exclusive): 2^53, so every seq is exact in JSON and JavaScript.
pub const SEQ_LIMIT: u64 = 1 << 53;
/// Most metadata entries of a device.
pub const MAX_META_ENTRIES: usize = 16;
/// Longest metadata key, in bytes.
pub const MAX_META_KEY_BYTES: usize = 32;
/// Longest metadata value, in bytes.
pub const MAX_META_VALUE_BYTES: usize = 128;

/// Why a device field was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceError {
    /// Not a valid device id.
    #[error("invalid device id {0:?}: 1 to {DEVICE_ID_MAX_LEN} characters from A-Z a-z 0-9 . _ -")]
    Id(String),
    /// Not a known status.
    #[error("unknown device status {0:?}: expected active, suspended, revoked or decommissioned")]
    Status(String),
    /// Metadata over a limit or malformed.
    #[error("invalid device metadata: {0}")]
    Meta(String),
}

/// A device id: 1 to 64 characters from `[A-Za-z0-9._-]`, unique on the ledger forever.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Validates raw id bytes (for example a COSE `kid`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DeviceError> {
        let valid = !bytes.is_empty()
            && bytes.len() <= DEVICE_ID_MAX_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(DeviceError::Id(String::from_utf8_lossy(bytes).into_owned()));
        }
        // Checked ASCII above.
        Ok(Self(String::from_utf8_lossy(bytes).into_owned()))
    }
}

impl FromStr for DeviceId {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        Self::from_bytes(s.as_bytes())
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Write for DeviceId {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.0.len() as u8);
        buf.put_slice(self.0.as_bytes());
    }
}

impl EncodeSize for DeviceId {
    fn encode_size(&self) -> usize {
        1 + self.0.len()
    }
}

impl Read for DeviceId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let len = u8::read(buf)? as usize;
        if len > DEVICE_ID_MAX_LEN {
            return Err(CodecError::InvalidLength(len));
        }
        if buf.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut bytes = vec![0u8; len];
        buf.copy_to_slice(&mut bytes);
        Self::from_bytes(&bytes).map_err(|_| CodecError::Invalid("DeviceId", "bad characters"))
    }
}

/// A device's place in its lifecycle. Only `Active` devices' readings are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceStatus {
    /// Readings accepted.
    Active,
    /// Temporarily not accepted; can be resumed.
    Suspended,
    /// Its key is no longer trusted; only a key rotation makes it active again.
    Revoked,
    /// Retired for good; the id is never reused.
    Decommissioned,
}

impl DeviceStatus {
    /// The name the API and CLI use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
            Self::Decommissioned => "decommissioned",
        }
    }

    /// The status's byte in encodings.
    pub fn tag(self) -> u8 {
        match self {
            Self::Active => 0,
            Self::Suspended => 1,
            Self::Revoked => 2,
            Self::Decommissioned => 3,
        }
    }

    /// The status of a tag byte.
    pub fn from_tag(t: u8) -> Result<Self, CodecError> {
        Ok(match t {
            0 => Self::Active,
            1 => Self::Suspended,
            2 => Self::Revoked,
            3 => Self::Decommissioned,
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceStatus {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        Ok(match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "revoked" => Self::Revoked,
            "decommissioned" => Self::Decommissioned,
            other => return Err(DeviceError::Status(other.to_string())),
        })
    }
}

impl Serialize for DeviceStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Write for DeviceStatus {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
    }
}

impl EncodeSize for DeviceStatus {
    fn encode_size(&self) -> usize {
        1
    }
}

impl Read for DeviceStatus {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Self::from_tag(u8::read(buf)?)
    }
}

/// Operator-chosen labels of a device (model, site, ...), bounded by [MAX_META_ENTRIES],
/// [MAX_META_KEY_BYTES] and [MAX_META_VALUE_BYTES].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceMeta(BTreeMap<String, String>);

impl DeviceMeta {
    /// Validates the entries.
    pub fn new(entries: BTreeMap<String, String>) -> Result<Self, DeviceError> {
        if entries.len() > MAX_META_ENTRIES {
            return Err(DeviceError::Meta(format!(
                "{} entries, the limit is {MAX_META_ENTRIES}",
                entries.len()
            )));
        }
        for (k, v) in &entries {
            if k.is_empty() || k.len() > MAX_META_KEY_BYTES {
                return Err(DeviceError::Meta(format!(
                    "key {k:?} must be 1 to {MAX_META_KEY_BYTES} bytes"
                )));
            }
            if v.len() > MAX_META_VALUE_BYTES {
                return Err(DeviceError::Meta(format!(
                    "value of {k:?} is {} bytes, the limit is {MAX_META_VALUE_BYTES}",
                    v.len()
                )));
            }
        }
        Ok(Self(entries))
    }

    /// The entries.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

fn put_str(s: &str, buf: &mut impl BufMut) {
    buf.put_u8(s.len() as u8);
    buf.put_slice(s.as_bytes());
}

fn get_str(buf: &mut impl Buf, max: usize) -> Result<String, CodecError> {
    let len = u8::read(buf)? as usize;
    if len > max {
        return Err(CodecError::InvalidLength(len));
    }
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("DeviceMeta", "not UTF-8"))
}

impl Write for DeviceMeta {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.0.len() as u8);
        for (k, v) in &self.0 {
            put_str(k, buf);
            put_str(v, buf);
        }
    }
}

impl EncodeSize for DeviceMeta {
    fn encode_size(&self) -> usize {
        1 + self
            .0
            .iter()
            .map(|(k, v)| 2 + k.len() + v.len())
            .sum::<usize>()
    }
}

impl Read for DeviceMeta {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let n = u8::read(buf)? as usize;
        if n > MAX_META_ENTRIES {
            return Err(CodecError::InvalidLength(n));
        }
        let mut entries = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..n {
            let k = get_str(buf, MAX_META_KEY_BYTES)?;
            let v = get_str(buf, MAX_META_VALUE_BYTES)?;
            // Canonical: strictly increasing keys.
            if last.as_ref().is_some_and(|l| *l >= k) {
                return Err(CodecError::Invalid("DeviceMeta", "keys not in order"));
            }
            last = Some(k.clone());
            entries.insert(k, v);
        }
        Self::new(entries).map_err(|_| CodecError::Invalid("DeviceMeta", "over a limit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn device_ids() {
        for ok in ["a", "sensor-01", "EUI.0011_22", &"x".repeat(64)] {
            let id: DeviceId = ok.parse().unwrap();
            assert_eq!(DeviceId::decode(id.encode()).unwrap(), id);
        }
        for bad in ["", "has space", "ü", "a/b", "+", &"x".repeat(65)] {
            assert!(bad.parse::<DeviceId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn meta_limits_and_roundtrip() {
        let mut m = BTreeMap::new();
        m.insert("model".to_string(), "TX-9".to_string());
        m.insert("site".to_string(), "dock 4".to_string());
        let meta = DeviceMeta::new(m.clone()).unwrap();
        assert_eq!(DeviceMeta::decode(meta.encode()).unwrap(), meta);
        m.insert("k".repeat(33), String::new());
        assert!(DeviceMeta::new(m).is_err());
        let many: BTreeMap<_, _> = (0..17).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(DeviceMeta::new(many).is_err());
    }
}
