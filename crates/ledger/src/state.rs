//! Ledger state layout: the records each module owns, their canonical encoding, the state keys
//! (SHA-256 of a namespaced id, because the authenticated store takes fixed 32-byte keys), and
//! [Overlay], the per-block scratch space that reads through to the store and keeps writes until
//! a transaction has fully succeeded.

use crate::error::TxError;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{DecodeExt, Encode, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use std::collections::BTreeMap;
use std::future::Future;
use verity_types::{AccountId, AssetCode, Hash, OrgId, Role, hash::sha256_parts};

/// Most distinct assets one account may hold.
pub const MAX_ASSETS_PER_ACCOUNT: usize = 64;
/// Longest display name of an asset or organization, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// A state key: SHA-256 of a namespace and an id.
pub type StateKey = Hash;

/// Key of an account record.
pub fn account_key(id: &AccountId) -> StateKey {
    sha256_parts(&[b"verity/state/v1/account/", &id.0])
}
/// Key of an asset record.
pub fn asset_key(code: &AssetCode) -> StateKey {
    sha256_parts(&[b"verity/state/v1/asset/", code.as_str().as_bytes()])
}
/// Key of an organization record.
pub fn org_key(id: &OrgId) -> StateKey {
    sha256_parts(&[b"verity/state/v1/org/", id.as_str().as_bytes()])
}

fn write_string(s: &str, buf: &mut impl BufMut) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

fn read_string(buf: &mut impl Buf, max: usize) -> Result<String, CodecError> {
    let len = u16::read(buf)? as usize;
    if len > max {
        return Err(CodecError::InvalidLength(len));
    }
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut v = vec![0u8; len];
    buf.copy_to_slice(&mut v);
    String::from_utf8(v).map_err(|_| CodecError::Invalid("string", "not UTF-8"))
}

fn role_tag(r: Role) -> u8 {
    match r {
        Role::Validator => 0,
        Role::Issuer => 1,
        Role::Operator => 2,
        Role::Regulator => 3,
        Role::Auditor => 4,
    }
}

fn role_from_tag(t: u8) -> Result<Role, CodecError> {
    Ok(match t {
        0 => Role::Validator,
        1 => Role::Issuer,
        2 => Role::Operator,
        3 => Role::Regulator,
        4 => Role::Auditor,
        t => return Err(CodecError::InvalidEnum(t)),
    })
}

/// An account (wallet).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccountRecord {
    /// The nonce its next transaction must carry.
    pub nonce: u64,
    /// The organization it acts for.
    pub organization: Option<OrgId>,
    /// Whether it administers its organization (may act on the organization's devices).
    pub admin: bool,
    /// Balances in minor units, by asset (only non-zero entries).
    pub balances: BTreeMap<AssetCode, u64>,
}

impl Write for AccountRecord {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.nonce);
        match &self.organization {
            Some(o) => {
                buf.put_u8(1);
                o.write(buf);
            }
            None => buf.put_u8(0),
        }
        buf.put_u8(u8::from(self.admin));
        buf.put_u16(self.balances.len() as u16);
        for (code, amount) in &self.balances {
            code.write(buf);
            buf.put_u64(*amount);
        }
    }
}
impl EncodeSize for AccountRecord {
    fn encode_size(&self) -> usize {
        8 + 1
            + self.organization.as_ref().map_or(0, |o| o.encode_size())
            + 1
            + 2
            + self
                .balances
                .keys()
                .map(|c| c.encode_size() + 8)
                .sum::<usize>()
    }
}
impl Read for AccountRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let nonce = u64::read(buf)?;
        let organization = match u8::read(buf)? {
            0 => None,
            1 => Some(OrgId::read(buf)?),
            t => return Err(CodecError::InvalidEnum(t)),
        };
        let admin = match u8::read(buf)? {
            0 => false,
            1 => true,
            t => return Err(CodecError::InvalidEnum(t)),
        };
        let n = u16::read(buf)? as usize;
        if n > MAX_ASSETS_PER_ACCOUNT {
            return Err(CodecError::InvalidLength(n));
        }
        let mut balances = BTreeMap::new();
        for _ in 0..n {
            let code = AssetCode::read(buf)?;
            balances.insert(code, u64::read(buf)?);
        }
        Ok(Self {
            nonce,
            organization,
            admin,
            balances,
        })
    }
}

/// An asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetRecord {
    /// Its code.
    pub code: AssetCode,
    /// Decimal places.
    pub decimals: u8,
    /// Issuing organization.
    pub issuer: OrgId,
    /// Display name.
    pub name: String,
    /// Units in existence (minted minus burned).
    pub supply: u64,
}

impl Write for AssetRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.code.write(buf);
        buf.put_u8(self.decimals);
        self.issuer.write(buf);
        write_string(&self.name, buf);
        buf.put_u64(self.supply);
    }
}
impl EncodeSize for AssetRecord {
    fn encode_size(&self) -> usize {
        self.code.encode_size() + 1 + self.issuer.encode_size() + 2 + self.name.len() + 8
    }
}
impl Read for AssetRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            code: AssetCode::read(buf)?,
            decimals: u8::read(buf)?,
            issuer: OrgId::read(buf)?,
            name: read_string(buf, MAX_NAME_LEN)?,
            supply: u64::read(buf)?,
        })
    }
}

/// An organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgRecord {
    /// Its id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// Roles, sorted.
    pub roles: Vec<Role>,
}

impl Write for OrgRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        write_string(&self.name, buf);
        buf.put_u8(self.roles.len() as u8);
        for r in &self.roles {
            buf.put_u8(role_tag(*r));
        }
    }
}
impl EncodeSize for OrgRecord {
    fn encode_size(&self) -> usize {
        self.id.encode_size() + 2 + self.name.len() + 1 + self.roles.len()
    }
}
impl Read for OrgRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let id = OrgId::read(buf)?;
        let name = read_string(buf, MAX_NAME_LEN)?;
        let n = u8::read(buf)? as usize;
        if n > 5 {
            return Err(CodecError::InvalidLength(n));
        }
        let mut roles = Vec::with_capacity(n);
        for _ in 0..n {
            roles.push(role_from_tag(u8::read(buf)?)?);
        }
        Ok(Self { id, name, roles })
    }
}

/// Read access to committed (or speculative) state, implemented by the store.
pub trait StateReader: Sync {
    /// The value under `key`, if any.
    fn get(&self, key: &StateKey) -> impl Future<Output = Result<Option<Vec<u8>>, String>> + Send;
}

/// A scratch space over a [StateReader]: reads see earlier writes of the same block; writes
/// stay here until [Overlay::into_writes].
pub struct Overlay<'a, R: StateReader> {
    reader: &'a R,
    writes: BTreeMap<StateKey, Option<Vec<u8>>>,
}

impl<'a, R: StateReader> Overlay<'a, R> {
    /// An empty overlay over `reader`.
    pub fn new(reader: &'a R) -> Self {
        Self {
            reader,
            writes: BTreeMap::new(),
        }
    }

    /// Raw read.
    pub async fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, TxError> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.reader.get(key).await.map_err(TxError::State)
    }

    /// Typed read; a record that does not decode is a storage fault.
    pub async fn get<T: Read<Cfg = ()>>(&self, key: &StateKey) -> Result<Option<T>, TxError> {
        match self.get_raw(key).await? {
            None => Ok(None),
            Some(bytes) => T::decode(bytes)
                .map(Some)
                .map_err(|e| TxError::State(format!("corrupt record: {e}"))),
        }
    }

    /// Typed write.
    pub fn put<T: Encode>(&mut self, key: StateKey, value: &T) {
        self.writes.insert(key, Some(value.encode().to_vec()));
    }

    /// Applies a transaction's staged writes.
    pub fn apply(&mut self, staged: Vec<(StateKey, Vec<u8>)>) {
        for (k, v) in staged {
            self.writes.insert(k, Some(v));
        }
    }

    /// The writes of the block, in key order.
    pub fn into_writes(self) -> BTreeMap<StateKey, Option<Vec<u8>>> {
        self.writes
    }
}

/// Writes a transaction stages before it is known to succeed.
#[derive(Default)]
pub struct Staged(pub Vec<(StateKey, Vec<u8>)>);

impl Staged {
    /// Stages a typed write.
    pub fn put<T: Encode>(&mut self, key: StateKey, value: &T) {
        self.0.push((key, value.encode().to_vec()));
    }
}
