//! Account keys and signatures: Ed25519 (RFC 8032, ZIP-215 validation rules so that single and
//! batch verification agree) and ECDSA P-256 with SHA-256 (signatures as `r‖s`, low-S only for
//! transactions so a transaction has exactly one valid encoding).

use crate::hash::sha256_parts;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, ReadExt, Write};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Length of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of a compressed SEC1 P-256 public key.
pub const P256_PUBLIC_KEY_LEN: usize = 33;
/// Length of a signature of either algorithm.
pub const SIGNATURE_LEN: usize = 64;

/// Errors about keys and signatures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm name is not one Verity knows.
    #[error("unknown algorithm {0:?} (expected ed25519 or p256)")]
    UnknownAlgorithm(String),
    /// The public key bytes are not a valid key of the algorithm.
    #[error("invalid {0} public key")]
    InvalidPublicKey(Algorithm),
    /// The secret key bytes are not a valid key of the algorithm.
    #[error("invalid {0} secret key")]
    InvalidSecretKey(Algorithm),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Hex decoding failed.
    #[error("invalid hex: {0}")]
    Hex(String),
}

/// A signature algorithm of accounts and devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over P-256 with SHA-256.
    P256,
}

impl Algorithm {
    fn tag(self) -> u8 {
        match self {
            Self::Ed25519 => 0,
            Self::P256 => 1,
        }
    }

    /// The name used in files, flags and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::P256 => "p256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "ed25519" => Ok(Self::Ed25519),
            "p256" => Ok(Self::P256),
            other => Err(KeyError::UnknownAlgorithm(other.to_string())),
        }
    }
}

/// A public key of an account or device, validated on construction.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PublicKey {
    /// An Ed25519 key (32 bytes).
    Ed25519([u8; ED25519_PUBLIC_KEY_LEN]),
    /// A P-256 key, known by its compressed SEC1 point (33 bytes).
    P256(P256Key),
}

/// A validated P-256 public key: the compressed SEC1 point it is encoded and known by, and the
/// uncompressed point that verification uses, derived once when the key is parsed (so a key
/// looked up for every reading is not decompressed for every reading).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct P256Key {
    compressed: [u8; P256_PUBLIC_KEY_LEN],
    uncompressed: [u8; 65],
}

impl P256Key {
    /// The key as an uncompressed SEC1 point (`04 ‖ x ‖ y`).
    pub fn uncompressed(&self) -> &[u8; 65] {
        &self.uncompressed
    }
}

/// Most keys each of [KeyMemo]'s two generations holds (about 140 bytes each).
pub const KEY_MEMO_ENTRIES: usize = 16_384;

/// A key's algorithm, length and bytes (an Ed25519 key's 32 bytes padded with a zero).
type MemoKey = (Algorithm, u8, [u8; P256_PUBLIC_KEY_LEN]);

/// Keys already parsed and found valid, by [MemoKey]. A validator reads the same few thousand device and account keys back
/// from its state for every reading and transaction, and validating a key means decompressing
/// a curve point: about 9 µs for P-256 (RustCrypto), which was 6.6 % of a validator's time at
/// 12,000 P-256 readings/s. Parsing is a pure function, so remembering its successes changes
/// no result; failures are never remembered. Two generations of at most [KEY_MEMO_ENTRIES];
/// when the young one is full the old one is dropped whole, and a key found in the old one
/// moves to the young one.
#[derive(Default)]
struct KeyMemo {
    young: std::collections::HashMap<MemoKey, PublicKey>,
    old: std::collections::HashMap<MemoKey, PublicKey>,
}

impl KeyMemo {
    fn get(&mut self, k: &MemoKey) -> Option<PublicKey> {
        if let Some(key) = self.young.get(k) {
            return Some(*key);
        }
        let key = self.old.remove(k)?;
        self.insert(*k, key);
        Some(key)
    }

    fn insert(&mut self, k: MemoKey, key: PublicKey) {
        if self.young.len() >= KEY_MEMO_ENTRIES {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(k, key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

static KEY_MEMO: std::sync::LazyLock<std::sync::Mutex<KeyMemo>> =
    std::sync::LazyLock::new(Default::default);

impl PublicKey {
    /// Parses and validates raw key bytes of `alg` (remembering valid keys, see [KeyMemo]).
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        let mut padded = [0u8; P256_PUBLIC_KEY_LEN];
        if bytes.len() > padded.len() {
            return Err(KeyError::InvalidPublicKey(alg));
        }
        padded[..bytes.len()].copy_from_slice(bytes);
        let memo_key = (alg, bytes.len() as u8, padded);
        if let Some(key) = KEY_MEMO.lock().expect("key memo").get(&memo_key) {
            return Ok(key);
        }
        let key = Self::parse(alg, bytes)?;
        KEY_MEMO.lock().expect("key memo").insert(memo_key, key);
        Ok(key)
    }

    fn parse(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        match alg {
            Algorithm::Ed25519 => {
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| KeyError::InvalidPublicKey(alg))?;
                ed25519_zebra::VerificationKey::try_from(arr)
                    .map_err(|_| KeyError::InvalidPublicKey(alg))?;
                Ok(Self::Ed25519(arr))
            }
            Algorithm::P256 => {
                let compressed: [u8; P256_PUBLIC_KEY_LEN] = bytes
                    .try_into()
                    .map_err(|_| KeyError::InvalidPublicKey(alg))?;
                let point = p256::ecdsa::VerifyingKey::from_sec1_bytes(&compressed)
                    .map_err(|_| KeyError::InvalidPublicKey(alg))?
                    .to_encoded_point(false);
                let uncompressed = point
                    .as_bytes()
                    .try_into()
                    .map_err(|_| KeyError::InvalidPublicKey(alg))?;
                Ok(Self::P256(P256Key {
                    compressed,
                    uncompressed,
                }))
            }
        }
    }

    /// Parses `alg` key bytes given in hex.
    pub fn from_hex(alg: Algorithm, hex_str: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(hex_str).map_err(|e| KeyError::Hex(e.to_string()))?;
        Self::from_bytes(alg, &bytes)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::P256(_) => Algorithm::P256,
        }
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Ed25519(b) => b,
            Self::P256(k) => &k.compressed,
        }
    }

    /// Verifies `sig` over `msg`. For P-256 a high-S signature is refused when `low_s_only`.
    pub fn verify(&self, msg: &[u8], sig: &Signature, low_s_only: bool) -> Result<(), KeyError> {
        match self {
            Self::Ed25519(pk) => {
                let vk = ed25519_zebra::VerificationKey::try_from(*pk)
                    .map_err(|_| KeyError::InvalidPublicKey(Algorithm::Ed25519))?;
                vk.verify(&ed25519_zebra::Signature::from(sig.0), msg)
                    .map_err(|_| KeyError::BadSignature)
            }
            Self::P256(k) => {
                if low_s_only {
                    let s = p256::ecdsa::Signature::from_slice(&sig.0)
                        .map_err(|_| KeyError::BadSignature)?;
                    if s.normalize_s().is_some() {
                        return Err(KeyError::BadSignature);
                    }
                }
                // ring verifies about 5x faster than RustCrypto's p256 here (BENCHMARKS.md);
                // it takes the uncompressed point.
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    &k.uncompressed,
                )
                .verify(msg, &sig.0)
                .map_err(|_| KeyError::BadSignature)
            }
        }
    }

    /// Verifies many signatures, each `(key, message, signature)`, with one verdict each, the
    /// one [PublicKey::verify] gives it alone: Ed25519 ones in one batch (ZIP-215 both ways;
    /// one by one when the batch fails, to find the bad ones), P-256 ones one by one.
    pub fn verify_many(items: &[(&PublicKey, &[u8], &Signature)], low_s_only: bool) -> Vec<bool> {
        let mut out = vec![false; items.len()];
        let mut batch = ed25519_zebra::batch::Verifier::new();
        let mut in_batch = Vec::new();
        for (i, (key, msg, sig)) in items.iter().enumerate() {
            match key {
                Self::Ed25519(pk) => {
                    let vk = ed25519_zebra::VerificationKeyBytes::from(*pk);
                    batch.queue((vk, ed25519_zebra::Signature::from(sig.0), *msg));
                    in_batch.push(i);
                }
                Self::P256(_) => out[i] = key.verify(msg, sig, low_s_only).is_ok(),
            }
        }
        if in_batch.len() > 1 && batch.verify(rand_core::OsRng).is_ok() {
            for i in in_batch {
                out[i] = true;
            }
        } else {
            for i in in_batch {
                let (key, msg, sig) = items[i];
                out[i] = key.verify(msg, sig, low_s_only).is_ok();
            }
        }
        out
    }

    /// The account id this key controls.
    pub fn account_id(&self) -> crate::AccountId {
        let digest = sha256_parts(&[
            b"verity/account/v1",
            &[self.algorithm().tag()],
            self.as_bytes(),
        ]);
        let mut id = [0u8; crate::ids::ACCOUNT_ID_LEN];
        id.copy_from_slice(&digest[..crate::ids::ACCOUNT_ID_LEN]);
        crate::AccountId(id)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), hex::encode(self.as_bytes()))
    }
}

impl Write for PublicKey {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.algorithm().tag());
        buf.put_slice(self.as_bytes());
    }
}

impl EncodeSize for PublicKey {
    fn encode_size(&self) -> usize {
        1 + self.as_bytes().len()
    }
}

impl PublicKey {
    /// Reads a key that this node validated before it wrote it (ledger state): an Ed25519 key
    /// is taken as it is, without the point decompression that validation costs (the most
    /// expensive step of reading a device record, which ingest and execution do per reading).
    /// Keys from outside (transactions, genesis, requests) go through [Read] instead.
    pub fn read_stored(buf: &mut impl Buf) -> Result<Self, CodecError> {
        let tag = u8::read(buf)?;
        if tag == 0 {
            if buf.remaining() < ED25519_PUBLIC_KEY_LEN {
                return Err(CodecError::EndOfBuffer);
            }
            let mut bytes = [0u8; ED25519_PUBLIC_KEY_LEN];
            buf.copy_to_slice(&mut bytes);
            return Ok(Self::Ed25519(bytes));
        }
        Self::read_tagged(tag, buf)
    }

    fn read_tagged(tag: u8, buf: &mut impl Buf) -> Result<Self, CodecError> {
        let (alg, len) = match tag {
            0 => (Algorithm::Ed25519, ED25519_PUBLIC_KEY_LEN),
            1 => (Algorithm::P256, P256_PUBLIC_KEY_LEN),
            t => return Err(CodecError::InvalidEnum(t)),
        };
        if buf.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut bytes = [0u8; P256_PUBLIC_KEY_LEN];
        buf.copy_to_slice(&mut bytes[..len]);
        Self::from_bytes(alg, &bytes[..len])
            .map_err(|_| CodecError::Invalid("PublicKey", "not a valid point"))
    }
}

impl Read for PublicKey {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tag = u8::read(buf)?;
        Self::read_tagged(tag, buf)
    }
}

/// A 64-byte signature (Ed25519, or P-256 as `r‖s`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl Write for Signature {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}

impl EncodeSize for Signature {
    fn encode_size(&self) -> usize {
        SIGNATURE_LEN
    }
}

impl Read for Signature {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if buf.remaining() < SIGNATURE_LEN {
            return Err(CodecError::EndOfBuffer);
        }
        let mut s = [0u8; SIGNATURE_LEN];
        buf.copy_to_slice(&mut s);
        Ok(Self(s))
    }
}

/// A secret signing key of an account or device.
#[derive(Clone)]
pub enum SecretKey {
    /// Ed25519.
    Ed25519(ed25519_zebra::SigningKey),
    /// P-256.
    P256(p256::ecdsa::SigningKey),
}

impl SecretKey {
    /// Generates a fresh key from the operating system's randomness.
    pub fn generate(alg: Algorithm) -> Self {
        let mut rng = rand_core::OsRng;
        match alg {
            Algorithm::Ed25519 => Self::Ed25519(ed25519_zebra::SigningKey::new(rng)),
            Algorithm::P256 => Self::P256(p256::ecdsa::SigningKey::random(&mut rng)),
        }
    }

    /// Rebuilds a key from its 32 secret bytes.
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::InvalidSecretKey(alg))?;
        match alg {
            Algorithm::Ed25519 => Ok(Self::Ed25519(ed25519_zebra::SigningKey::from(arr))),
            Algorithm::P256 => p256::ecdsa::SigningKey::from_bytes(&arr.into())
                .map(Self::P256)
                .map_err(|_| KeyError::InvalidSecretKey(alg)),
        }
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        match self {
            Self::Ed25519(k) => k.to_bytes(),
            Self::P256(k) => k.to_bytes().into(),
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::P256(_) => Algorithm::P256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Ed25519(k) => PublicKey::Ed25519(k.verification_key().into()),
            Self::P256(k) => {
                let vk = k.verifying_key();
                let mut p = P256Key {
                    compressed: [0; P256_PUBLIC_KEY_LEN],
                    uncompressed: [0; 65],
                };
                p.compressed
                    .copy_from_slice(vk.to_encoded_point(true).as_bytes());
                p.uncompressed
                    .copy_from_slice(vk.to_encoded_point(false).as_bytes());
                PublicKey::P256(p)
            }
        }
    }

    /// Signs `msg` (deterministically; P-256 signatures come out low-S).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        match self {
            Self::Ed25519(k) => Signature(k.sign(msg).to_bytes()),
            Self::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                let sig = sig.normalize_s().unwrap_or(sig);
                let mut out = [0u8; SIGNATURE_LEN];
                out.copy_from_slice(&sig.to_bytes());
                Signature(out)
            }
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey({}, public {:?})",
            self.algorithm(),
            self.public_key()
        )
    }
}

/// The JSON form of a key file, as `verity keys new` writes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// `ed25519` or `p256`.
    pub alg: Algorithm,
    /// The 32 secret bytes in hex.
    pub secret_key: String,
    /// The public key in hex (for reading; the secret key is authoritative).
    pub public_key: String,
    /// The account id the key controls.
    pub account: String,
}

impl KeyFile {
    /// Describes `key` as a key file.
    pub fn from_key(key: &SecretKey) -> Self {
        let public = key.public_key();
        Self {
            alg: key.algorithm(),
            secret_key: hex::encode(key.to_bytes()),
            public_key: hex::encode(public.as_bytes()),
            account: public.account_id().to_string(),
        }
    }

    /// Restores the key the file holds.
    pub fn to_key(&self) -> Result<SecretKey, KeyError> {
        let bytes = hex::decode(&self.secret_key).map_err(|e| KeyError::Hex(e.to_string()))?;
        SecretKey::from_bytes(self.alg, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_keys_parse_as_fresh_ones_and_invalid_ones_stay_invalid() {
        for alg in [Algorithm::Ed25519, Algorithm::P256] {
            let key = SecretKey::generate(alg).public_key();
            let bytes = key.as_bytes().to_vec();
            // Parsed twice: the second comes from the memo, and equals a fresh parse.
            assert_eq!(PublicKey::from_bytes(alg, &bytes), Ok(key));
            assert_eq!(PublicKey::from_bytes(alg, &bytes), Ok(key));
            assert_eq!(PublicKey::parse(alg, &bytes), Ok(key));
            // The same bytes with a zero after them, or as the other algorithm's, are no key.
            let mut longer = bytes.clone();
            longer.push(0);
            for _ in 0..2 {
                assert_eq!(
                    PublicKey::from_bytes(alg, &longer),
                    Err(KeyError::InvalidPublicKey(alg))
                );
            }
            let other = match alg {
                Algorithm::Ed25519 => Algorithm::P256,
                Algorithm::P256 => Algorithm::Ed25519,
            };
            assert!(PublicKey::from_bytes(other, &bytes).is_err());
        }
        // A point not on the curve is refused every time.
        let mut off_curve = [0xffu8; P256_PUBLIC_KEY_LEN];
        off_curve[0] = 0x02;
        for _ in 0..2 {
            assert!(PublicKey::from_bytes(Algorithm::P256, &off_curve).is_err());
        }
    }

    #[test]
    fn the_key_memo_is_bounded() {
        let mut memo = KeyMemo::default();
        let key = SecretKey::generate(Algorithm::Ed25519).public_key();
        let first = (Algorithm::Ed25519, 32, [0u8; P256_PUBLIC_KEY_LEN]);
        memo.insert(first, key);
        for i in 0..3 * KEY_MEMO_ENTRIES as u32 {
            let mut bytes = [0u8; P256_PUBLIC_KEY_LEN];
            bytes[..4].copy_from_slice(&(i + 1).to_le_bytes());
            memo.insert((Algorithm::Ed25519, 32, bytes), key);
            assert!(memo.len() <= 2 * KEY_MEMO_ENTRIES);
        }
        assert_eq!(memo.get(&first), None);
    }

    /// Every encoding of a point of small order that ZIP-215 accepts: the 8 canonical ones and
    /// the 6 non-canonical ones (a y coordinate of p or p + 1, or a sign bit set where x = 0).
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|p| p.compress().to_bytes())
            .collect();
        let mut p_plus = |low: u8, sign: bool| {
            // p = 2^255 - 19, little-endian, plus 0 or 1.
            let mut b = [0xff; 32];
            b[0] = low;
            b[31] = if sign { 0xff } else { 0x7f };
            out.push(b);
        };
        p_plus(0xed, false);
        p_plus(0xed, true);
        p_plus(0xee, false);
        p_plus(0xee, true);
        let mut one_negative = [0u8; 32];
        one_negative[0] = 1;
        one_negative[31] = 0x80;
        out.push(one_negative);
        let mut minus_one_negative = [0xff; 32];
        minus_one_negative[0] = 0xec;
        out.push(minus_one_negative);
        out
    }

    /// Validators must agree on which Ed25519 signatures are valid, and a node checks some
    /// one by one and some in batches: both follow ZIP-215, which accepts every one of these
    /// edge cases (small-order key and R, S = 0, non-canonical point encodings), and both
    /// refuse a non-canonical S.
    #[test]
    fn ed25519_follows_zip215_singly_and_in_batches() {
        let encodings = small_order_encodings();
        assert_eq!(encodings.len(), 14);
        let msg = b"Zcash";
        let mut batch = ed25519_zebra::batch::Verifier::new();
        for a in &encodings {
            let key = PublicKey::from_bytes(Algorithm::Ed25519, a)
                .expect("ZIP-215 accepts every small-order encoding as a key");
            for r in &encodings {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(r);
                assert_eq!(
                    key.verify(msg, &Signature(sig), false),
                    Ok(()),
                    "A = {}, R = {}",
                    hex::encode(a),
                    hex::encode(r)
                );
                batch.queue((
                    ed25519_zebra::VerificationKeyBytes::from(*a),
                    ed25519_zebra::Signature::from(sig),
                    &msg[..],
                ));
                // S = L (the group order) is not canonical: refused.
                let mut s_is_l = sig;
                s_is_l[32..].copy_from_slice(&[
                    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde,
                    0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
                ]);
                assert_eq!(
                    key.verify(msg, &Signature(s_is_l), false),
                    Err(KeyError::BadSignature)
                );
            }
        }
        assert!(batch.verify(rand_core::OsRng).is_ok());
        // A batch holding one bad signature fails as a whole.
        let k = SecretKey::generate(Algorithm::Ed25519);
        let mut bad = k.sign(msg).0;
        bad[5] ^= 1;
        let mut batch = ed25519_zebra::batch::Verifier::new();
        let PublicKey::Ed25519(pk) = k.public_key() else {
            unreachable!()
        };
        batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(pk),
            ed25519_zebra::Signature::from(bad),
            &msg[..],
        ));
        batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(encodings[0]),
            ed25519_zebra::Signature::from([0u8; 64]),
            &msg[..],
        ));
        assert!(batch.verify(rand_core::OsRng).is_err());
    }

    #[test]
    fn sign_verify_both_algorithms() {
        for alg in [Algorithm::Ed25519, Algorithm::P256] {
            let k = SecretKey::generate(alg);
            let pk = k.public_key();
            let sig = k.sign(b"hello");
            assert!(pk.verify(b"hello", &sig, true).is_ok());
            assert_eq!(pk.verify(b"hellp", &sig, true), Err(KeyError::BadSignature));
            let restored = SecretKey::from_bytes(alg, &k.to_bytes()).unwrap();
            assert_eq!(restored.public_key(), pk);
            assert_eq!(PublicKey::from_bytes(alg, pk.as_bytes()).unwrap(), pk);
        }
    }

    #[test]
    fn p256_high_s_refused_when_low_s_required() {
        let k = SecretKey::generate(Algorithm::P256);
        let sig = k.sign(b"m");
        let s = p256::ecdsa::Signature::from_slice(&sig.0).unwrap();
        let (r, s_) = s.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s_).unwrap();
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(&high.to_bytes());
        let high = Signature(bytes);
        let pk = k.public_key();
        assert!(pk.verify(b"m", &high, false).is_ok());
        assert_eq!(pk.verify(b"m", &high, true), Err(KeyError::BadSignature));
    }

    #[test]
    fn invalid_public_keys_refused() {
        assert!(PublicKey::from_bytes(Algorithm::P256, &[9u8; 33]).is_err());
        assert!(PublicKey::from_bytes(Algorithm::Ed25519, &[1u8; 31]).is_err());
    }
}
