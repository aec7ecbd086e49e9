//! The device registry (PROTOCOL.md §1): who owns each device, its current key and algorithm,
//! its lifecycle status and the highest reading sequence number accepted from it.
//!
//! Lifecycle: `active ⇄ suspended`; `active | suspended → revoked` (key no longer trusted;
//! a key rotation makes the device active again); anything but `decommissioned →
//! decommissioned`, which is final. Only the owner, or an admin account of the owner's
//! organization, changes a device.

use crate::{
    accounts::{self, TxCtx},
    error::TxError,
    governance,
    state::{AccountRecord, Overlay, Staged, StateKey, StateReader},
};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, ReadExt, Write};
use verity_types::{AccountId, DeviceId, DeviceMeta, DeviceStatus, PublicKey, Role, hash};

/// Key of a device record.
pub fn device_key(id: &DeviceId) -> StateKey {
    hash::sha256_parts(&[b"verity/state/v1/device/", id.as_str().as_bytes()])
}

/// A registered device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device id.
    pub id: DeviceId,
    /// The owning account (of an operator organization).
    pub owner: AccountId,
    /// Its current key; the key's algorithm is the device's algorithm.
    pub key: PublicKey,
    /// Lifecycle status.
    pub status: DeviceStatus,
    /// Highest accepted reading seq (0 before the first reading).
    pub last_seq: u64,
    /// Height at which the device was registered.
    pub registered_height: u64,
    /// Height from which the current key is valid.
    pub key_height: u64,
    /// Operator labels.
    pub meta: DeviceMeta,
}

impl Write for DeviceRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.owner.write(buf);
        self.key.write(buf);
        self.status.write(buf);
        buf.put_u64(self.last_seq);
        buf.put_u64(self.registered_height);
        buf.put_u64(self.key_height);
        self.meta.write(buf);
    }
}

impl EncodeSize for DeviceRecord {
    fn encode_size(&self) -> usize {
        self.id.encode_size()
            + self.owner.encode_size()
            + self.key.encode_size()
            + 1
            + 24
            + self.meta.encode_size()
    }
}

impl Read for DeviceRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            id: DeviceId::read(buf)?,
            owner: AccountId::read(buf)?,
            // Written by execution after validating the key: no need to validate it again.
            key: PublicKey::read_stored(buf)?,
            status: DeviceStatus::read(buf)?,
            last_seq: u64::read(buf)?,
            registered_height: u64::read(buf)?,
            key_height: u64::read(buf)?,
            meta: DeviceMeta::read(buf)?,
        })
    }
}

/// Reads a device.
pub async fn load<R: StateReader>(
    state: &Overlay<'_, R>,
    id: &DeviceId,
) -> Result<Option<DeviceRecord>, TxError> {
    state.get(&device_key(id)).await
}

async fn acts_for_operator<R: StateReader>(
    state: &Overlay<'_, R>,
    account: &AccountRecord,
) -> Result<bool, TxError> {
    match &account.organization {
        Some(org) => governance::has_role(state, org, Role::Operator).await,
        None => Ok(false),
    }
}

/// Registers a device owned by the sender, who must act for an operator organization.
pub async fn register<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    height: u64,
    id: &DeviceId,
    key: &PublicKey,
    meta: &DeviceMeta,
    staged: &mut Staged,
) -> Result<(), TxError> {
    if !acts_for_operator(state, tx.sender_record).await? {
        return Err(TxError::Unauthorized(
            "only an account of an operator organization may register devices".into(),
        ));
    }
    if load(state, id).await?.is_some() {
        return Err(TxError::DeviceExists(id.clone()));
    }
    let record = DeviceRecord {
        id: id.clone(),
        owner: tx.sender,
        key: *key,
        status: DeviceStatus::Active,
        last_seq: 0,
        registered_height: height,
        key_height: height,
        meta: meta.clone(),
    };
    staged.put(device_key(id), &record);
    Ok(())
}

/// Loads a device the sender may change: its owner, or an admin of the owner's organization.
async fn load_controlled<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &DeviceId,
) -> Result<DeviceRecord, TxError> {
    let record = load(state, id)
        .await?
        .ok_or_else(|| TxError::UnknownDevice(id.clone()))?;
    if record.owner == tx.sender {
        return Ok(record);
    }
    let sender_org = tx.sender_record.organization.as_ref();
    if tx.sender_record.admin && sender_org.is_some() {
        let owner = accounts::load(state, &record.owner).await?;
        if owner.organization.as_ref() == sender_org {
            return Ok(record);
        }
    }
    Err(TxError::Unauthorized(format!(
        "only the owner of device {id} or an admin of its organization may change it"
    )))
}

/// Refuses any change to a decommissioned device (`to` is what the change would lead to).
fn not_decommissioned(record: &DeviceRecord, to: DeviceStatus) -> Result<(), TxError> {
    if record.status == DeviceStatus::Decommissioned {
        return Err(TxError::InvalidTransition {
            device: record.id.clone(),
            from: record.status,
            to,
        });
    }
    Ok(())
}

fn transition_allowed(from: DeviceStatus, to: DeviceStatus) -> bool {
    use DeviceStatus::*;
    matches!(
        (from, to),
        (Active, Suspended)
            | (Suspended, Active)
            | (Active | Suspended, Revoked)
            | (Active | Suspended | Revoked, Decommissioned)
    )
}

/// Moves a device to `status`.
pub async fn set_status<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &DeviceId,
    status: DeviceStatus,
    staged: &mut Staged,
) -> Result<(), TxError> {
    let mut record = load_controlled(state, tx, id).await?;
    if !transition_allowed(record.status, status) {
        return Err(TxError::InvalidTransition {
            device: id.clone(),
            from: record.status,
            to: status,
        });
    }
    record.status = status;
    staged.put(device_key(id), &record);
    Ok(())
}

/// Replaces a device's key from `height` on; a revoked device becomes active again.
pub async fn rotate_key<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    height: u64,
    id: &DeviceId,
    key: &PublicKey,
    staged: &mut Staged,
) -> Result<(), TxError> {
    let mut record = load_controlled(state, tx, id).await?;
    not_decommissioned(&record, DeviceStatus::Active)?;
    if record.key == *key {
        return Err(TxError::Unauthorized(
            "the new key must differ from the current key".into(),
        ));
    }
    record.key = *key;
    record.key_height = height;
    if record.status == DeviceStatus::Revoked {
        record.status = DeviceStatus::Active;
    }
    staged.put(device_key(id), &record);
    Ok(())
}

/// Hands a device to `to`, which must be an account of an operator organization.
pub async fn transfer<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &DeviceId,
    to: &AccountId,
    staged: &mut Staged,
) -> Result<(), TxError> {
    let mut record = load_controlled(state, tx, id).await?;
    not_decommissioned(&record, record.status)?;
    if *to == record.owner {
        return Err(TxError::Unauthorized(format!(
            "device {id} already belongs to {to}"
        )));
    }
    let new_owner = accounts::load(state, to).await?;
    if !acts_for_operator(state, &new_owner).await? {
        return Err(TxError::Unauthorized(format!(
            "{to} does not act for an operator organization"
        )));
    }
    record.owner = *to;
    staged.put(device_key(id), &record);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceStatus::*;

    #[test]
    fn lifecycle_transitions() {
        assert!(transition_allowed(Active, Suspended));
        assert!(transition_allowed(Suspended, Active));
        assert!(transition_allowed(Suspended, Revoked));
        assert!(transition_allowed(Revoked, Decommissioned));
        assert!(!transition_allowed(Revoked, Active));
        assert!(!transition_allowed(Active, Active));
        for to in [Active, Suspended, Revoked, Decommissioned] {
            assert!(!transition_allowed(Decommissioned, to));
        }
    }
}

#[cfg(test)]
mod rule_tests {
    use super::*;
    use crate::{
        BlockEnv, TxError, VerifyAll,
        execute::apply_tx,
        state::{AccountRecord, OrgRecord, StateKey, account_key, org_key},
    };
    use futures::executor::block_on;
    use std::collections::BTreeMap;
    use verity_types::{
        Algorithm, Nonce, OrgId, SecretKey, SignedTransaction, Transaction, hash::sha256,
    };

    struct MapReader(BTreeMap<StateKey, Vec<u8>>);

    impl StateReader for MapReader {
        async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(key).cloned())
        }
    }

    fn account(reader: &mut MapReader, key: &SecretKey, org: &str, admin: bool) {
        let mut overlay = Overlay::new(&*reader);
        overlay.put(
            account_key(&key.public_key().account_id()),
            &AccountRecord {
                organization: Some(org.parse().unwrap()),
                admin,
                ..Default::default()
            },
        );
        let writes = overlay.into_writes();
        reader
            .0
            .extend(writes.into_iter().map(|(k, v)| (k, v.unwrap())));
    }

    fn org(reader: &mut MapReader, id: &str, roles: Vec<Role>) {
        let id: OrgId = id.parse().unwrap();
        let mut overlay = Overlay::new(&*reader);
        overlay.put(
            org_key(&id),
            &OrgRecord {
                id: id.clone(),
                name: id.to_string(),
                roles,
            },
        );
        let writes = overlay.into_writes();
        reader
            .0
            .extend(writes.into_iter().map(|(k, v)| (k, v.unwrap())));
    }

    fn tx(key: &SecretKey, nonce: u64, body: verity_types::TxBody) -> SignedTransaction {
        Transaction {
            signer: key.public_key(),
            nonce: Nonce(nonce),
            body,
        }
        .sign(key, &sha256(b"chain"))
    }

    /// Applies `txs` in order to `reader`'s state, keeping what succeeds; returns each result.
    fn apply(reader: &mut MapReader, txs: &[SignedTransaction]) -> Vec<Result<(), TxError>> {
        let env = BlockEnv {
            chain_id: sha256(b"chain"),
            height: 7,
            timestamp_ms: 1,
        };
        let mut out = Vec::new();
        for t in txs {
            let writes = {
                let mut overlay = Overlay::new(&*reader);
                let r = block_on(apply_tx(&mut overlay, &env, t, &VerifyAll)).map(|_| ());
                out.push(r);
                overlay.into_writes()
            };
            reader
                .0
                .extend(writes.into_iter().map(|(k, v)| (k, v.unwrap())));
        }
        out
    }

    #[test]
    fn owners_admins_and_transfers() {
        let mut reader = MapReader(BTreeMap::new());
        org(&mut reader, "ops-a", vec![Role::Operator]);
        org(&mut reader, "ops-b", vec![Role::Operator]);
        org(&mut reader, "bank", vec![Role::Issuer]);
        let owner = SecretKey::generate(Algorithm::Ed25519);
        let colleague = SecretKey::generate(Algorithm::Ed25519);
        let admin = SecretKey::generate(Algorithm::P256);
        let other_org = SecretKey::generate(Algorithm::Ed25519);
        let banker = SecretKey::generate(Algorithm::Ed25519);
        account(&mut reader, &owner, "ops-a", false);
        account(&mut reader, &colleague, "ops-a", false);
        account(&mut reader, &admin, "ops-a", true);
        account(&mut reader, &other_org, "ops-b", false);
        account(&mut reader, &banker, "bank", false);
        let dev: DeviceId = "d1".parse().unwrap();
        let key = SecretKey::generate(Algorithm::Ed25519).public_key();
        let register = |by: &SecretKey, n| {
            tx(
                by,
                n,
                verity_types::TxBody::DeviceRegister {
                    device: dev.clone(),
                    key,
                    meta: DeviceMeta::default(),
                },
            )
        };
        let status = |by: &SecretKey, n, s| {
            tx(
                by,
                n,
                verity_types::TxBody::DeviceSetStatus {
                    device: dev.clone(),
                    status: s,
                },
            )
        };
        let give = |by: &SecretKey, n, to: &SecretKey| {
            tx(
                by,
                n,
                verity_types::TxBody::DeviceTransfer {
                    device: dev.clone(),
                    to: to.public_key().account_id(),
                },
            )
        };
        let code = |r: &Result<(), TxError>| r.as_ref().err().map(TxError::code);
        let results = apply(
            &mut reader,
            &[
                register(&banker, 0),                                // not an operator
                register(&owner, 0),                                 // ok
                register(&other_org, 0),                             // id taken
                status(&colleague, 0, DeviceStatus::Suspended),      // same org, not admin
                status(&admin, 0, DeviceStatus::Suspended),          // admin of the owner's org
                status(&other_org, 0, DeviceStatus::Active),         // another org
                give(&owner, 1, &banker),                            // not an operator account
                give(&owner, 1, &other_org),                         // ok: now owned by ops-b
                status(&admin, 1, DeviceStatus::Active),             // no longer its org's device
                status(&other_org, 0, DeviceStatus::Decommissioned), // ok
                give(&other_org, 1, &owner),                         // decommissioned: final
            ],
        );
        let codes: Vec<Option<&str>> = results.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                Some("unauthorized"),
                None,
                Some("device_exists"),
                Some("unauthorized"),
                None,
                Some("unauthorized"),
                Some("unauthorized"),
                None,
                Some("unauthorized"),
                None,
                Some("invalid_transition"),
            ]
        );
        let overlay = Overlay::new(&reader);
        let d = block_on(load(&overlay, &dev)).unwrap().unwrap();
        assert_eq!(d.owner, other_org.public_key().account_id());
        assert_eq!(d.status, DeviceStatus::Decommissioned);
        assert_eq!(d.registered_height, 7);
    }
}
