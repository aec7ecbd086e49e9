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
use verity_types::{
    AccountId, AssetCode, Hash, OrgId, Role, TierId, genesis::TierLimits, hash::sha256_parts,
};

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
/// Key of a wallet tier.
pub fn tier_key(id: &TierId) -> StateKey {
    sha256_parts(&[b"verity/state/v1/tier/", id.as_str().as_bytes()])
}
/// Key of the network settings record.
pub fn settings_key() -> StateKey {
    sha256_parts(&[b"verity/state/v1/settings"])
}
/// Key of a digital or paper cheque.
pub fn cheque_key(id: &Hash) -> StateKey {
    sha256_parts(&[b"verity/state/v1/cheque/", &id.0])
}
/// Key of a multi-signature proposal.
pub fn proposal_key(account: &AccountId, id: &Hash) -> StateKey {
    sha256_parts(&[b"verity/state/v1/proposal/", &account.0, &id.0])
}
/// Key of an organization record.
pub fn org_key(id: &OrgId) -> StateKey {
    sha256_parts(&[b"verity/state/v1/org/", id.as_str().as_bytes()])
}

pub(crate) fn write_string(s: &str, buf: &mut impl BufMut) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

pub(crate) fn read_string(buf: &mut impl Buf, max: usize) -> Result<String, CodecError> {
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
    /// Its wallet tier; the network's default tier when none.
    pub tier: Option<TierId>,
    /// Why the regulator froze it, while it is frozen.
    pub frozen: Option<String>,
    /// The UTC day (block time / 86 400 000 ms) that `spent` counts.
    pub spent_day: u64,
    /// Paid so far on `spent_day`, by asset (for the tier's daily limit).
    pub spent: BTreeMap<AssetCode, u64>,
    /// Set on a multi-signature account: who may approve, and how many must.
    pub multisig: Option<MultisigPolicy>,
}

/// The members and threshold of a multi-signature account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultisigPolicy {
    /// Member accounts.
    pub members: Vec<AccountId>,
    /// Approvals needed.
    pub threshold: u8,
    /// Proposals waiting for approvals.
    pub pending: u16,
}

impl AccountRecord {
    /// The amount of `asset` held.
    pub fn balance(&self, asset: &AssetCode) -> u64 {
        self.balances.get(asset).copied().unwrap_or(0)
    }

    /// Paid of `asset` on `day`.
    pub fn spent_on(&self, day: u64, asset: &AssetCode) -> u64 {
        if self.spent_day == day {
            self.spent.get(asset).copied().unwrap_or(0)
        } else {
            0
        }
    }
}

fn write_asset_amounts(map: &BTreeMap<AssetCode, u64>, buf: &mut impl BufMut) {
    buf.put_u16(map.len() as u16);
    for (code, amount) in map {
        code.write(buf);
        buf.put_u64(*amount);
    }
}

fn asset_amounts_size(map: &BTreeMap<AssetCode, u64>) -> usize {
    2 + map.keys().map(|c| c.encode_size() + 8).sum::<usize>()
}

fn read_asset_amounts(buf: &mut impl Buf) -> Result<BTreeMap<AssetCode, u64>, CodecError> {
    let n = u16::read(buf)? as usize;
    if n > MAX_ASSETS_PER_ACCOUNT {
        return Err(CodecError::InvalidLength(n));
    }
    let mut map = BTreeMap::new();
    for _ in 0..n {
        let code = AssetCode::read(buf)?;
        map.insert(code, u64::read(buf)?);
    }
    Ok(map)
}

fn write_opt_string(s: &Option<String>, buf: &mut impl BufMut) {
    match s {
        Some(s) => {
            buf.put_u8(1);
            write_string(s, buf);
        }
        None => buf.put_u8(0),
    }
}

fn opt_string_size(s: &Option<String>) -> usize {
    1 + s.as_ref().map_or(0, |s| 2 + s.len())
}

fn read_opt_string(buf: &mut impl Buf, max: usize) -> Result<Option<String>, CodecError> {
    Ok(match u8::read(buf)? {
        0 => None,
        1 => Some(read_string(buf, max)?),
        t => return Err(CodecError::InvalidEnum(t)),
    })
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
        write_asset_amounts(&self.balances, buf);
        self.tier.write(buf);
        write_opt_string(&self.frozen, buf);
        buf.put_u64(self.spent_day);
        write_asset_amounts(&self.spent, buf);
        match &self.multisig {
            Some(m) => {
                buf.put_u8(1);
                buf.put_u8(m.members.len() as u8);
                for a in &m.members {
                    a.write(buf);
                }
                buf.put_u8(m.threshold);
                buf.put_u16(m.pending);
            }
            None => buf.put_u8(0),
        }
    }
}
impl EncodeSize for AccountRecord {
    fn encode_size(&self) -> usize {
        8 + 1
            + self.organization.as_ref().map_or(0, |o| o.encode_size())
            + 1
            + asset_amounts_size(&self.balances)
            + self.tier.encode_size()
            + opt_string_size(&self.frozen)
            + 8
            + asset_amounts_size(&self.spent)
            + 1
            + self
                .multisig
                .as_ref()
                .map_or(0, |m| 1 + m.members.len() * 20 + 1 + 2)
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
        let balances = read_asset_amounts(buf)?;
        let tier = Option::<TierId>::read(buf)?;
        let frozen = read_opt_string(buf, verity_types::ids::MEMO_MAX_LEN)?;
        let spent_day = u64::read(buf)?;
        let spent = read_asset_amounts(buf)?;
        let multisig = match u8::read(buf)? {
            0 => None,
            1 => {
                let n = u8::read(buf)? as usize;
                if n > verity_types::tx::MAX_MULTISIG_MEMBERS {
                    return Err(CodecError::InvalidLength(n));
                }
                let members = (0..n)
                    .map(|_| AccountId::read(buf))
                    .collect::<Result<_, _>>()?;
                Some(MultisigPolicy {
                    members,
                    threshold: u8::read(buf)?,
                    pending: u16::read(buf)?,
                })
            }
            t => return Err(CodecError::InvalidEnum(t)),
        };
        Ok(Self {
            nonce,
            organization,
            admin,
            balances,
            tier,
            frozen,
            spent_day,
            spent,
            multisig,
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

    /// Applies a transaction's staged writes (an empty value removes the record).
    pub fn apply(&mut self, staged: Vec<(StateKey, Vec<u8>)>) {
        for (k, v) in staged {
            self.writes.insert(k, (!v.is_empty()).then_some(v));
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

    /// Stages the removal of a record.
    pub fn delete(&mut self, key: StateKey) {
        self.0.push((key, Vec::new()));
    }

    /// Typed read that sees this transaction's own staged writes first (an empty value is a
    /// staged removal), then the block's state.
    pub async fn get<T: Read<Cfg = ()>, R: StateReader>(
        &self,
        state: &Overlay<'_, R>,
        key: &StateKey,
    ) -> Result<Option<T>, TxError> {
        match self.0.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) if v.is_empty() => Ok(None),
            Some((_, v)) => T::decode(v.clone())
                .map(Some)
                .map_err(|e| TxError::State(format!("corrupt record: {e}"))),
            None => state.get(key).await,
        }
    }
}

/// A wallet tier: per-asset limits on single payments, daily payments and balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierRecord {
    /// Its id.
    pub id: TierId,
    /// Display name.
    pub name: String,
    /// Limits by asset; an asset not named is not limited.
    pub limits: BTreeMap<AssetCode, TierLimits>,
}

impl Write for TierRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        write_string(&self.name, buf);
        buf.put_u16(self.limits.len() as u16);
        for (code, l) in &self.limits {
            code.write(buf);
            l.single_payment.map(|a| a.0).write(buf);
            l.daily.map(|a| a.0).write(buf);
            l.balance.map(|a| a.0).write(buf);
        }
    }
}
impl EncodeSize for TierRecord {
    fn encode_size(&self) -> usize {
        let opt = |a: Option<verity_types::Amount>| if a.is_some() { 9 } else { 1 };
        self.id.encode_size()
            + 2
            + self.name.len()
            + 2
            + self
                .limits
                .iter()
                .map(|(c, l)| {
                    c.encode_size() + opt(l.single_payment) + opt(l.daily) + opt(l.balance)
                })
                .sum::<usize>()
    }
}
impl Read for TierRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let id = TierId::read(buf)?;
        let name = read_string(buf, MAX_NAME_LEN)?;
        let n = u16::read(buf)? as usize;
        if n > MAX_ASSETS_PER_ACCOUNT {
            return Err(CodecError::InvalidLength(n));
        }
        let mut limits = BTreeMap::new();
        for _ in 0..n {
            let code = AssetCode::read(buf)?;
            let amount = |v: Option<u64>| v.map(verity_types::Amount);
            let l = TierLimits {
                single_payment: amount(Option::<u64>::read(buf)?),
                daily: amount(Option::<u64>::read(buf)?),
                balance: amount(Option::<u64>::read(buf)?),
            };
            limits.insert(code, l);
        }
        Ok(Self { id, name, limits })
    }
}

/// Network-wide settings from the genesis.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// The tier of accounts not put in another.
    pub default_tier: Option<TierId>,
}

impl Write for Settings {
    fn write(&self, buf: &mut impl BufMut) {
        self.default_tier.write(buf);
    }
}
impl EncodeSize for Settings {
    fn encode_size(&self) -> usize {
        self.default_tier.encode_size()
    }
}
impl Read for Settings {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            default_tier: Option::<TierId>::read(buf)?,
        })
    }
}
