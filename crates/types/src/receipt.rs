//! Transaction receipts: what a committed transaction did, committed to by the block's receipts
//! root so that any movement of value in any account's history can be proven offline.
//!
//! A receipt leaf is `SHA-256("rcpt" ‖ tx id ‖ index u32 ‖ outcome ‖ movements)`, where the
//! outcome is a short code (`ok`, or for a cheque presentment that did not clear, the reason
//! it was dishonoured) written as `len u8 ‖ bytes`, and the movements are `count u16` followed
//! by each [Movement]'s encoding (docs/proofs.md).

use crate::{AccountId, AssetCode, Hash, hash::sha256};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use serde::{Deserialize, Serialize};

/// Longest outcome code.
pub const MAX_OUTCOME_LEN: usize = 64;

/// Why value moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MovementKind {
    /// A transfer between accounts.
    Transfer,
    /// New units created by the issuer.
    Mint,
    /// Units destroyed by the issuer.
    Burn,
    /// A cheque (digital or truncated paper) cleared.
    Cheque,
}

impl MovementKind {
    /// The name the API and history show.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transfer => "transfer",
            Self::Mint => "mint",
            Self::Burn => "burn",
            Self::Cheque => "cheque",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Transfer => 0,
            Self::Mint => 1,
            Self::Burn => 2,
            Self::Cheque => 3,
        }
    }
}

impl std::str::FromStr for MovementKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "transfer" => Self::Transfer,
            "mint" => Self::Mint,
            "burn" => Self::Burn,
            "cheque" => Self::Cheque,
            _ => {
                return Err(format!(
                    "unknown kind {s:?}: transfer, mint, burn or cheque"
                ));
            }
        })
    }
}

/// One change of one account's balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The account whose balance changed.
    pub account: AccountId,
    /// The asset.
    pub asset: AssetCode,
    /// Signed change in minor units (a decimal string in JSON).
    #[serde(with = "i128_string")]
    pub delta: i128,
    /// The other party, if any (none for a mint to oneself or a burn).
    pub counterparty: Option<AccountId>,
    /// Why it moved.
    pub kind: MovementKind,
    /// The memo of the transaction (or cheque).
    pub memo: String,
    /// The account's balance of the asset after the movement, minor units.
    #[serde(with = "u64_string")]
    pub balance_after: u64,
}

impl Write for Movement {
    fn write(&self, buf: &mut impl BufMut) {
        self.account.write(buf);
        self.asset.write(buf);
        buf.put_i128(self.delta);
        match &self.counterparty {
            Some(c) => {
                buf.put_u8(1);
                c.write(buf);
            }
            None => buf.put_u8(0),
        }
        buf.put_u8(self.kind.tag());
        buf.put_u16(self.memo.len() as u16);
        buf.put_slice(self.memo.as_bytes());
        buf.put_u64(self.balance_after);
    }
}

impl EncodeSize for Movement {
    fn encode_size(&self) -> usize {
        self.account.encode_size()
            + self.asset.encode_size()
            + 16
            + 1
            + self.counterparty.map_or(0, |c| c.encode_size())
            + 1
            + 2
            + self.memo.len()
            + 8
    }
}

impl Read for Movement {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let account = AccountId::read(buf)?;
        let asset = AssetCode::read(buf)?;
        if buf.remaining() < 16 + 1 {
            return Err(CodecError::EndOfBuffer);
        }
        let delta = buf.get_i128();
        let counterparty = match buf.get_u8() {
            0 => None,
            1 => Some(AccountId::read(buf)?),
            _ => return Err(CodecError::Invalid("Movement", "counterparty flag")),
        };
        if buf.remaining() < 1 + 2 {
            return Err(CodecError::EndOfBuffer);
        }
        let kind = match buf.get_u8() {
            0 => MovementKind::Transfer,
            1 => MovementKind::Mint,
            2 => MovementKind::Burn,
            3 => MovementKind::Cheque,
            _ => return Err(CodecError::Invalid("Movement", "kind")),
        };
        let len = buf.get_u16() as usize;
        if buf.remaining() < len + 8 {
            return Err(CodecError::EndOfBuffer);
        }
        let mut memo = vec![0; len];
        buf.copy_to_slice(&mut memo);
        let memo = String::from_utf8(memo).map_err(|_| CodecError::Invalid("Movement", "memo"))?;
        let balance_after = buf.get_u64();
        Ok(Self {
            account,
            asset,
            delta,
            counterparty,
            kind,
            memo,
            balance_after,
        })
    }
}

/// What a committed transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub tx_id: Hash,
    /// Its position in the block.
    pub index: u32,
    /// `ok`, or the short code of a non-payment outcome (see [Receipt::leaf]).
    pub outcome: String,
    /// Every balance it changed, in order.
    pub movements: Vec<Movement>,
}

/// The outcome of a transaction that did what it asked.
pub const OUTCOME_OK: &str = "ok";

impl Receipt {
    /// The leaf hashed into the receipts root.
    pub fn leaf(&self) -> Hash {
        receipt_leaf(&self.tx_id, self.index, &self.outcome, &self.movements)
    }
}

/// `SHA-256("rcpt" ‖ tx id ‖ index u32 ‖ outcome len u8 ‖ outcome ‖ count u16 ‖ movements)`.
pub fn receipt_leaf(tx_id: &Hash, index: u32, outcome: &str, movements: &[Movement]) -> Hash {
    let mut bytes = Vec::with_capacity(4 + 32 + 4 + receipt_body_size(outcome, movements));
    bytes.extend_from_slice(b"rcpt");
    bytes.extend_from_slice(&tx_id.0);
    bytes.extend_from_slice(&index.to_be_bytes());
    write_receipt_body(outcome, movements, &mut bytes);
    sha256(&bytes)
}

/// The outcome, cut to [MAX_OUTCOME_LEN] bytes as every encoding of a receipt keeps it.
fn outcome_bytes(outcome: &str) -> &[u8] {
    &outcome.as_bytes()[..outcome.len().min(MAX_OUTCOME_LEN)]
}

/// Length of [write_receipt_body]'s output.
pub fn receipt_body_size(outcome: &str, movements: &[Movement]) -> usize {
    1 + outcome_bytes(outcome).len() + 2 + movements.iter().map(|m| m.encode_size()).sum::<usize>()
}

/// Writes the part of a receipt that follows its position in the block:
/// `outcome len u8 ‖ outcome ‖ count u16 ‖ movements`. The receipt leaf hashes it, and the
/// node's index stores it as is.
pub fn write_receipt_body(outcome: &str, movements: &[Movement], out: &mut impl BufMut) {
    let outcome = outcome_bytes(outcome);
    out.put_u8(outcome.len() as u8);
    out.put_slice(outcome);
    out.put_u16(movements.len() as u16);
    for m in movements {
        m.write(out);
    }
}

/// Reads what [write_receipt_body] wrote; the buffer must hold exactly that.
pub fn read_receipt_body(buf: &mut impl Buf) -> Result<(String, Vec<Movement>), CodecError> {
    let len = u8::read(buf)? as usize;
    if len > MAX_OUTCOME_LEN || buf.remaining() < len {
        return Err(CodecError::Invalid("receipt", "outcome length"));
    }
    let mut outcome = vec![0; len];
    buf.copy_to_slice(&mut outcome);
    let outcome =
        String::from_utf8(outcome).map_err(|_| CodecError::Invalid("receipt", "outcome utf-8"))?;
    let count = u16::read(buf)? as usize;
    let movements = (0..count)
        .map(|_| Movement::read(buf))
        .collect::<Result<Vec<_>, _>>()?;
    if buf.has_remaining() {
        return Err(CodecError::ExtraData(buf.remaining()));
    }
    Ok((outcome, movements))
}

/// Serde of an i128 as a decimal string (JSON numbers lose precision past 2^53).
pub mod i128_string {
    use serde::{Deserialize, Deserializer, Serializer};
    /// Writes the number as a string.
    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    /// Reads a number from a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Serde of a u64 as a decimal string.
pub mod u64_string {
    use serde::{Deserialize, Deserializer, Serializer};
    /// Writes the number as a string.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    /// Reads a number from a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::parse_hash;
    use commonware_codec::DecodeExt;

    /// The receipt body the index stores reads back as written; a cut, an extra byte, an
    /// outcome longer than the limit or not UTF-8 is an error, never a misread receipt.
    #[test]
    fn receipt_body_reads_back_and_refuses_damage() {
        let movements = vec![Movement {
            account: AccountId([0x33; 20]),
            asset: "CNY".parse().unwrap(),
            delta: -7,
            counterparty: Some(AccountId([0x44; 20])),
            kind: MovementKind::Transfer,
            memo: "m".into(),
            balance_after: 93,
        }];
        let mut body = Vec::new();
        write_receipt_body("ok", &movements, &mut body);
        assert_eq!(body.len(), receipt_body_size("ok", &movements));
        let read = |b: &[u8]| read_receipt_body(&mut commonware_codec::Copying(b));
        assert_eq!(read(&body).unwrap(), ("ok".to_string(), movements.clone()));
        for cut in 0..body.len() {
            assert!(read(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert!(read(&longer).is_err());
        let mut bad_utf8 = body.clone();
        bad_utf8[1] = 0xff;
        assert!(read(&bad_utf8).is_err());
        let mut too_long = vec![(MAX_OUTCOME_LEN + 1) as u8];
        too_long.extend(std::iter::repeat_n(b'x', MAX_OUTCOME_LEN + 1));
        too_long.extend_from_slice(&0u16.to_be_bytes());
        assert!(read(&too_long).is_err());
        // An outcome over the limit is cut when written, as the receipt leaf hashes it.
        let long = "y".repeat(MAX_OUTCOME_LEN + 10);
        let mut cut = Vec::new();
        write_receipt_body(&long, &[], &mut cut);
        assert_eq!(read(&cut).unwrap().0, "y".repeat(MAX_OUTCOME_LEN));
    }

    /// Pins the receipt leaf and the movement encoding (docs/proofs.md): a change to either is
    /// a change to every receipts root.
    #[test]
    fn receipt_leaf_vector() {
        let movements = vec![
            Movement {
                account: AccountId([0x11; 20]),
                asset: "CNY".parse().unwrap(),
                delta: -1250,
                counterparty: Some(AccountId([0x22; 20])),
                kind: MovementKind::Cheque,
                memo: "rent".into(),
                balance_after: 98_750,
            },
            Movement {
                account: AccountId([0x22; 20]),
                asset: "CNY".parse().unwrap(),
                delta: 1250,
                counterparty: None,
                kind: MovementKind::Mint,
                memo: String::new(),
                balance_after: 1250,
            },
        ];
        let mut encoded = Vec::new();
        movements[0].write(&mut encoded);
        assert_eq!(encoded.len(), movements[0].encode_size());
        for m in &movements {
            let mut bytes = Vec::new();
            m.write(&mut bytes);
            assert_eq!(
                Movement::decode(bytes::Bytes::from(bytes.clone())).unwrap(),
                *m
            );
            // Every truncation is refused, not misread.
            for cut in 0..bytes.len() {
                assert!(
                    Movement::decode(bytes::Bytes::copy_from_slice(&bytes[..cut])).is_err(),
                    "cut at {cut}"
                );
            }
        }
        assert_eq!(
            hex::encode(&encoded),
            concat!(
                "1111111111111111111111111111111111111111",
                "03434e59",
                "fffffffffffffffffffffffffffffb1e",
                "01",
                "2222222222222222222222222222222222222222",
                "03",
                "000472656e74",
                "00000000000181be"
            )
        );
        let tx_id = parse_hash(&"ab".repeat(32)).unwrap();
        let leaf = receipt_leaf(&tx_id, 7, OUTCOME_OK, &movements);
        let mut bytes = b"rcpt".to_vec();
        bytes.extend_from_slice(&tx_id.0);
        bytes.extend_from_slice(&7u32.to_be_bytes());
        bytes.push(2);
        bytes.extend_from_slice(b"ok");
        bytes.extend_from_slice(&2u16.to_be_bytes());
        for m in &movements {
            m.write(&mut bytes);
        }
        assert_eq!(leaf, sha256(&bytes));
        assert_ne!(
            leaf,
            receipt_leaf(&tx_id, 7, "dishonoured:stopped", &movements)
        );
        assert_ne!(leaf, receipt_leaf(&tx_id, 7, OUTCOME_OK, &movements[..1]));
    }
}
