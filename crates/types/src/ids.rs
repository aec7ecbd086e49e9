//! Identifiers and quantities of the ledger as newtypes: accounts, assets, organizations,
//! amounts, nonces and memos, each with its canonical encoding and its limits.

use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, ReadExt, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr};

/// Length of an account id in bytes.
pub const ACCOUNT_ID_LEN: usize = 20;
/// Longest asset code (characters `A-Z0-9`).
pub const ASSET_CODE_MAX_LEN: usize = 12;
/// Longest memo in bytes (UTF-8).
pub const MEMO_MAX_LEN: usize = 256;
/// Longest organization id (characters `a-z0-9-`).
pub const ORG_ID_MAX_LEN: usize = 32;
/// Most decimals an asset may have.
pub const ASSET_DECIMALS_MAX: u8 = 18;

/// Why an identifier or quantity could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// Not a valid account id.
    #[error("invalid account id {0:?}: expected {ACCOUNT_ID_LEN} bytes as lowercase hex")]
    Account(String),
    /// Not a valid asset code.
    #[error("invalid asset code {0:?}: 1 to {ASSET_CODE_MAX_LEN} characters A-Z or 0-9")]
    Asset(String),
    /// Not a valid organization id.
    #[error("invalid organization id {0:?}: 1 to {ORG_ID_MAX_LEN} characters a-z, 0-9 or -")]
    Org(String),
    /// Not a valid decimal amount.
    #[error("invalid amount {0:?}: {1}")]
    Amount(String, &'static str),
    /// Memo too long.
    #[error("memo is {0} bytes, the limit is {MEMO_MAX_LEN}")]
    MemoTooLong(usize),
    /// Not a valid tier id.
    #[error("invalid tier id {0:?}: 1 to {TIER_ID_MAX_LEN} characters a-z, 0-9 or -")]
    Tier(String),
    /// Not a valid cheque number.
    #[error(
        "invalid cheque number {0:?}: 1 to {CHEQUE_NUMBER_MAX_LEN} characters A-Z, a-z, 0-9 or -"
    )]
    ChequeNumber(String),
}

macro_rules! serde_via_display {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An account (wallet) id: the first 20 bytes of SHA-256 over its key, shown as 40 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub [u8; ACCOUNT_ID_LEN]);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({self})")
    }
}
impl FromStr for AccountId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() != ACCOUNT_ID_LEN * 2 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(IdError::Account(s.to_string()));
        }
        let bytes = hex::decode(s).map_err(|_| IdError::Account(s.to_string()))?;
        let mut id = [0u8; ACCOUNT_ID_LEN];
        id.copy_from_slice(&bytes);
        Ok(Self(id))
    }
}
serde_via_display!(AccountId);

impl Write for AccountId {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}
impl EncodeSize for AccountId {
    fn encode_size(&self) -> usize {
        ACCOUNT_ID_LEN
    }
}
impl Read for AccountId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if buf.remaining() < ACCOUNT_ID_LEN {
            return Err(CodecError::EndOfBuffer);
        }
        let mut id = [0u8; ACCOUNT_ID_LEN];
        buf.copy_to_slice(&mut id);
        Ok(Self(id))
    }
}

/// Writes a short string as a one-byte length and its bytes.
fn write_short(s: &str, buf: &mut impl BufMut) {
    buf.put_u8(s.len() as u8);
    buf.put_slice(s.as_bytes());
}

/// Reads a short string written by [write_short], at most `max` bytes.
fn read_short(buf: &mut impl Buf, max: usize) -> Result<String, CodecError> {
    let len = u8::read(buf)? as usize;
    if len > max {
        return Err(CodecError::InvalidLength(len));
    }
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("string", "not UTF-8"))
}

/// An asset code such as `CNY`: 1 to 12 characters `A-Z0-9`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetCode(String);

impl AssetCode {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssetCode({})", self.0)
    }
}
impl FromStr for AssetCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= ASSET_CODE_MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Asset(s.to_string()))
        }
    }
}
serde_via_display!(AssetCode);
impl Write for AssetCode {
    fn write(&self, buf: &mut impl BufMut) {
        write_short(&self.0, buf);
    }
}
impl EncodeSize for AssetCode {
    fn encode_size(&self) -> usize {
        1 + self.0.len()
    }
}
impl Read for AssetCode {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        read_short(buf, ASSET_CODE_MAX_LEN)?
            .parse()
            .map_err(|_| CodecError::Invalid("AssetCode", "bad characters"))
    }
}

/// An organization id such as `bank-of-anywhere`: 1 to 32 characters `a-z0-9-`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgId(String);

impl OrgId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgId({})", self.0)
    }
}
impl FromStr for OrgId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= ORG_ID_MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Org(s.to_string()))
        }
    }
}
serde_via_display!(OrgId);
impl Write for OrgId {
    fn write(&self, buf: &mut impl BufMut) {
        write_short(&self.0, buf);
    }
}
impl EncodeSize for OrgId {
    fn encode_size(&self) -> usize {
        1 + self.0.len()
    }
}
impl Read for OrgId {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        read_short(buf, ORG_ID_MAX_LEN)?
            .parse()
            .map_err(|_| CodecError::Invalid("OrgId", "bad characters"))
    }
}

/// A short text id whose characters are checked on parse and on decode.
macro_rules! checked_text_id {
    ($(#[$doc:meta])* $t:ident, $max:expr, $allowed:expr, $err:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $t(String);

        impl $t {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.0)
            }
        }
        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let allowed: fn(u8) -> bool = $allowed;
                if !s.is_empty() && s.len() <= $max && s.bytes().all(allowed) {
                    Ok(Self(s.to_string()))
                } else {
                    Err($err(s.to_string()))
                }
            }
        }
        serde_via_display!($t);
        impl Write for $t {
            fn write(&self, buf: &mut impl BufMut) {
                write_short(&self.0, buf);
            }
        }
        impl EncodeSize for $t {
            fn encode_size(&self) -> usize {
                1 + self.0.len()
            }
        }
        impl Read for $t {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                read_short(buf, $max)?
                    .parse()
                    .map_err(|_| CodecError::Invalid(stringify!($t), "bad characters"))
            }
        }
    };
}

/// Longest tier id.
pub const TIER_ID_MAX_LEN: usize = 32;
/// Longest cheque number.
pub const CHEQUE_NUMBER_MAX_LEN: usize = 32;

checked_text_id!(
    /// A wallet tier such as `anonymous` or `verified`: 1 to 32 characters `a-z0-9-`.
    TierId,
    TIER_ID_MAX_LEN,
    |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-',
    IdError::Tier
);

checked_text_id!(
    /// The number printed on a paper cheque: 1 to 32 characters `A-Za-z0-9-`.
    ChequeNumber,
    CHEQUE_NUMBER_MAX_LEN,
    |b| b.is_ascii_alphanumeric() || b == b'-',
    IdError::ChequeNumber
);

/// An amount in an asset's minor units (for CNY with 2 decimals, 1234 means 12.34).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(pub u64);

impl Amount {
    /// Parses a decimal string such as `12.34` exactly into minor units of an asset with
    /// `decimals` decimals. Refuses more fractional digits than the asset has, signs, exponents
    /// and anything that does not fit in 64 bits.
    pub fn parse_decimal(s: &str, decimals: u8) -> Result<Self, IdError> {
        let err = |why| IdError::Amount(s.to_string(), why);
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected digits, optionally with a decimal point"));
        }
        if s.contains('.') && frac.is_empty() {
            return Err(err("expected digits after the decimal point"));
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected digits after the decimal point"));
        }
        if frac.len() > decimals as usize {
            return Err(err("more decimal places than the asset has"));
        }
        let scale = 10u64
            .checked_pow(decimals as u32)
            .ok_or(err("too many decimals"))?;
        let int_v: u64 = int.parse().map_err(|_| err("too large"))?;
        let mut frac_v: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err("too large"))?
        };
        frac_v *= 10u64.pow(decimals as u32 - frac.len() as u32);
        int_v
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_v))
            .map(Self)
            .ok_or(err("too large"))
    }

    /// Formats minor units as a decimal string with exactly `decimals` decimals.
    pub fn to_decimal(self, decimals: u8) -> String {
        if decimals == 0 {
            return self.0.to_string();
        }
        let scale = 10u128.pow(decimals as u32);
        let v = self.0 as u128;
        format!(
            "{}.{:0width$}",
            v / scale,
            v % scale,
            width = decimals as usize
        )
    }
}
impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}
impl Write for Amount {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.0);
    }
}
impl EncodeSize for Amount {
    fn encode_size(&self) -> usize {
        8
    }
}
impl Read for Amount {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(u64::read(buf)?))
    }
}

/// A per-account transaction counter; an account's next transaction carries its current nonce.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nonce(pub u64);

impl Write for Nonce {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.0);
    }
}
impl EncodeSize for Nonce {
    fn encode_size(&self) -> usize {
        8
    }
}
impl Read for Nonce {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(u64::read(buf)?))
    }
}

/// A free-text memo, at most [MEMO_MAX_LEN] bytes of UTF-8.
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug, Serialize)]
#[serde(transparent)]
pub struct Memo(String);

impl Memo {
    /// Makes a memo, refusing one over the limit.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        if s.len() > MEMO_MAX_LEN {
            return Err(IdError::MemoTooLong(s.len()));
        }
        Ok(Self(s))
    }
    /// The memo text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl<'de> Deserialize<'de> for Memo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Memo::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
impl Write for Memo {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u16(self.0.len() as u16);
        buf.put_slice(self.0.as_bytes());
    }
}
impl EncodeSize for Memo {
    fn encode_size(&self) -> usize {
        2 + self.0.len()
    }
}
impl Read for Memo {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let len = u16::read(buf)? as usize;
        if len > MEMO_MAX_LEN {
            return Err(CodecError::InvalidLength(len));
        }
        if buf.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut bytes = vec![0u8; len];
        buf.copy_to_slice(&mut bytes);
        String::from_utf8(bytes)
            .map(Self)
            .map_err(|_| CodecError::Invalid("Memo", "not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_parse_exactly() {
        assert_eq!(Amount::parse_decimal("12.34", 2), Ok(Amount(1234)));
        assert_eq!(Amount::parse_decimal("12.3", 2), Ok(Amount(1230)));
        assert_eq!(Amount::parse_decimal("12", 2), Ok(Amount(1200)));
        assert_eq!(Amount::parse_decimal("0.01", 2), Ok(Amount(1)));
        assert!(Amount::parse_decimal("12.345", 2).is_err());
        assert!(Amount::parse_decimal("-1", 2).is_err());
        assert!(Amount::parse_decimal("1e3", 2).is_err());
        assert!(Amount::parse_decimal("12.", 2).is_err());
        assert!(Amount::parse_decimal(".5", 2).is_err());
        assert!(Amount::parse_decimal("184467440737095516.16", 2).is_err());
        assert_eq!(
            Amount::parse_decimal("184467440737095516.15", 2),
            Ok(Amount(u64::MAX))
        );
        assert_eq!(Amount(1234).to_decimal(2), "12.34");
        assert_eq!(Amount(5).to_decimal(2), "0.05");
        assert_eq!(Amount(5).to_decimal(0), "5");
    }

    #[test]
    fn ids_validate() {
        assert!("CNY".parse::<AssetCode>().is_ok());
        assert!("cny".parse::<AssetCode>().is_err());
        assert!("".parse::<AssetCode>().is_err());
        assert!("ABCDEFGHIJKLM".parse::<AssetCode>().is_err());
        assert!("bank-1".parse::<OrgId>().is_ok());
        assert!("Bank".parse::<OrgId>().is_err());
        assert!(Memo::new("x".repeat(MEMO_MAX_LEN + 1)).is_err());
        let a = AccountId([7; 20]);
        assert_eq!(a.to_string().parse::<AccountId>(), Ok(a));
        assert!("07".parse::<AccountId>().is_err());
    }
}
