//! Reading acceptance against ledger state (PROTOCOL.md §3, every rule but the clock rule):
//! the device exists and is active, the algorithm and key match, and the sequence number is
//! above the device's highest accepted one, which is ledger state and so survives restarts.

use crate::{
    devices::{self, DeviceRecord, device_key},
    error::TxError,
    state::{Overlay, StateReader},
};
use verity_types::{DeviceStatus, PublicKey, Reading, RejectCode};

/// Decides whether a reading's signature is valid under a key; lets a node reuse the
/// verification it did at ingest. Must agree with [Reading::verify].
pub trait ReadingCheck: Sync {
    /// True if `reading` is signed by `key`.
    fn check(&self, reading: &Reading, key: &PublicKey) -> bool;
}

/// Verifies every reading signature.
pub struct VerifyReadings;

impl ReadingCheck for VerifyReadings {
    fn check(&self, reading: &Reading, key: &PublicKey) -> bool {
        reading.verify(key)
    }
}

/// Why a reading is refused against state, or a storage failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadingOutcome {
    /// Refused with a protocol code.
    Rejected(RejectCode),
    /// State could not be read.
    State(String),
}

impl From<TxError> for ReadingOutcome {
    fn from(e: TxError) -> Self {
        match e {
            TxError::State(s) => Self::State(s),
            other => Self::State(other.to_string()),
        }
    }
}

/// Checks `reading` against the device registry without writing; returns the device record
/// as it would be after accepting it.
pub async fn check_reading<R: StateReader>(
    state: &Overlay<'_, R>,
    reading: &Reading,
    sigs: &impl ReadingCheck,
) -> Result<DeviceRecord, ReadingOutcome> {
    let Some(mut device) = devices::load(state, reading.device()).await? else {
        return Err(ReadingOutcome::Rejected(RejectCode::UnknownDevice));
    };
    if device.status != DeviceStatus::Active {
        return Err(ReadingOutcome::Rejected(RejectCode::DeviceNotActive));
    }
    if device.key.algorithm() != reading.algorithm() {
        return Err(ReadingOutcome::Rejected(RejectCode::WrongAlgorithm));
    }
    if !sigs.check(reading, &device.key) {
        return Err(ReadingOutcome::Rejected(RejectCode::BadSignature));
    }
    if reading.seq() <= device.last_seq {
        return Err(ReadingOutcome::Rejected(RejectCode::Replay));
    }
    device.last_seq = reading.seq();
    Ok(device)
}

/// Accepts `reading` into state (advancing its device's seq), or refuses it changing nothing.
pub async fn apply_reading<R: StateReader>(
    state: &mut Overlay<'_, R>,
    reading: &Reading,
    sigs: &impl ReadingCheck,
) -> Result<(), ReadingOutcome> {
    let device = check_reading(state, reading, sigs).await?;
    state.put(device_key(&device.id), &device);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        BlockEnv, Checks, VerifyAll,
        execute::execute_block,
        state::{AccountRecord, OrgRecord, StateKey, account_key, org_key},
    };
    use futures::executor::block_on;
    use std::collections::BTreeMap;
    use verity_types::{
        Algorithm, DeviceMeta, Nonce, Role, SecretKey, Transaction, TxBody,
        hash::sha256,
        reading::{
            SenmlValue,
            sign::{NewRecord, sign_reading},
        },
    };

    struct MapReader(BTreeMap<StateKey, Vec<u8>>);

    impl StateReader for MapReader {
        async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(key).cloned())
        }
    }

    fn reading(key: &SecretKey, seq: u64) -> Reading {
        let bytes = sign_reading(
            key,
            &"d1".parse().unwrap(),
            seq,
            &[NewRecord {
                name: "t".into(),
                time: 1_700_000_000.0,
                unit: None,
                value: SenmlValue::Number(1.0),
            }],
        );
        Reading::decode(&bytes).unwrap()
    }

    /// A state with an operator account that owns active device `d1`.
    fn state(operator: &SecretKey, device: &SecretKey) -> MapReader {
        let mut reader = MapReader(BTreeMap::new());
        let mut overlay = Overlay::new(&reader);
        let org: verity_types::OrgId = "ops".parse().unwrap();
        overlay.put(
            org_key(&org),
            &OrgRecord {
                id: org.clone(),
                name: "Ops".into(),
                roles: vec![Role::Operator],
            },
        );
        overlay.put(
            account_key(&operator.public_key().account_id()),
            &AccountRecord {
                organization: Some(org),
                ..Default::default()
            },
        );
        overlay.put(
            device_key(&"d1".parse().unwrap()),
            &DeviceRecord {
                id: "d1".parse().unwrap(),
                owner: operator.public_key().account_id(),
                key: device.public_key(),
                status: DeviceStatus::Active,
                last_seq: 0,
                registered_height: 1,
                key_height: 1,
                meta: DeviceMeta::default(),
            },
        );
        let writes = overlay.into_writes();
        for (k, v) in writes {
            reader.0.insert(k, v.unwrap());
        }
        reader
    }

    fn run(
        reader: &MapReader,
        txs: &[verity_types::SignedTransaction],
        readings: &[Reading],
    ) -> Vec<Option<RejectCode>> {
        let mut overlay = Overlay::new(reader);
        let env = BlockEnv {
            chain_id: sha256(b"chain"),
            height: 2,
            timestamp_ms: 1,
        };
        let checks = Checks {
            txs: &VerifyAll,
            readings: &VerifyReadings,
        };
        let readings: Vec<_> = readings.iter().cloned().map(std::sync::Arc::new).collect();
        let out = block_on(execute_block(&mut overlay, &env, txs, &readings, checks)).unwrap();
        out.reading_receipts.iter().map(|r| r.rejected).collect()
    }

    #[test]
    fn readings_are_checked_against_the_state_inside_the_block() {
        let operator = SecretKey::generate(Algorithm::Ed25519);
        let device = SecretKey::generate(Algorithm::P256);
        let reader = state(&operator, &device);
        // In order and signed: accepted; a repeated or lower seq and a foreign key: rejected.
        let stranger = SecretKey::generate(Algorithm::P256);
        assert_eq!(
            run(
                &reader,
                &[],
                &[
                    reading(&device, 2),
                    reading(&device, 1),
                    reading(&stranger, 3),
                    reading(&device, 4)
                ]
            ),
            vec![
                None,
                Some(RejectCode::Replay),
                Some(RejectCode::BadSignature),
                None
            ]
        );
        // Revoked by a transaction of the same block: the block records the reading as
        // rejected rather than applying it.
        let revoke = Transaction {
            signer: operator.public_key(),
            nonce: Nonce(0),
            body: TxBody::DeviceSetStatus {
                device: "d1".parse().unwrap(),
                status: DeviceStatus::Revoked,
            },
        }
        .sign(&operator, &sha256(b"chain"));
        assert_eq!(
            run(&reader, &[revoke], &[reading(&device, 1)]),
            vec![Some(RejectCode::DeviceNotActive)]
        );
    }
}
