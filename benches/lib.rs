//! Fixtures for Verity's Criterion micro-benchmarks (`cargo bench -p verity-benches`).
//!
//! The benchmarks are named `module::op/param=value` and live in `types.rs` (readings, SenML,
//! signatures, blocks, Merkle proofs), `ledger.rs` (transaction and block execution) and
//! `index.rs` (indexing a block of readings).
//! Everything here is deterministic: keys come from fixed seeds, so runs compare.

use futures::executor::block_on;
use std::collections::BTreeMap;
use verity_ledger::{
    BlockEnv, ReadingCheck, VerifyAll,
    execute::apply_tx,
    governance::apply_genesis,
    state::{Overlay, StateKey, StateReader},
};
use verity_types::{
    AccountId, Algorithm, Amount, DeviceId, DeviceMeta, Genesis, Hash, Memo, Nonce, PublicKey,
    Reading, SecretKey, Transaction, TxBody,
    genesis::{GenesisAccount, GenesisAsset, GenesisOrganization, GenesisValidator, Role},
    hash::sha256,
    reading::{
        SenmlValue,
        sign::{NewRecord, sign_reading},
    },
};

/// Block time of the fixtures: 2026-01-01T10:00:00Z.
pub const TIME_MS: u64 = 1_767_261_600_000;

/// A key derived from `seed`, so every run signs the same bytes.
pub fn key(alg: Algorithm, seed: &str) -> SecretKey {
    let mut bytes = sha256(seed.as_bytes()).0;
    loop {
        // Any 32 bytes are an Ed25519 key; a P-256 scalar must be below the group order.
        if let Ok(k) = SecretKey::from_bytes(alg, &bytes) {
            return k;
        }
        bytes = sha256(&bytes).0;
    }
}

/// `n` temperature records one second apart.
pub fn records(n: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| NewRecord {
            name: format!("urn:dev:bench:temp{i}"),
            time: (TIME_MS / 1000) as f64 + i as f64,
            unit: Some("Cel".into()),
            value: SenmlValue::Number(4.25 + i as f64),
        })
        .collect()
}

/// The id of bench device `i`.
pub fn device_id(i: usize) -> DeviceId {
    format!("bench-{i:05}").parse().expect("a valid device id")
}

/// Reading `seq` of device `i`, with `n` records, signed by `key`.
pub fn reading(key: &SecretKey, i: usize, seq: u64, n: usize) -> Reading {
    Reading::decode(&sign_reading(key, &device_id(i), seq, &records(n))).expect("a good reading")
}

/// Committed state as a sorted map, the way the store hands it to the ledger.
#[derive(Clone, Default)]
pub struct MapState(pub BTreeMap<StateKey, Vec<u8>>);

impl StateReader for MapState {
    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(key).cloned())
    }
}

impl MapState {
    fn commit(&mut self, writes: BTreeMap<StateKey, Option<Vec<u8>>>) {
        for (k, v) in writes {
            match v {
                Some(v) => self.0.insert(k, v),
                None => self.0.remove(&k),
            };
        }
    }
}

/// Trusts every reading signature: a node verifies them at ingest and remembers the verdict,
/// so block execution does not verify them again.
pub struct Verified;

impl ReadingCheck for Verified {
    fn check(&self, _: &Reading, _: &PublicKey) -> bool {
        true
    }
}

/// A ledger with one operator-and-issuer organization, `payers` funded accounts and `devices`
/// registered Ed25519 devices.
pub struct Fixture {
    /// Committed state.
    pub state: MapState,
    /// The chain id transactions sign over.
    pub chain_id: Hash,
    /// Funded accounts' keys, each at nonce 0.
    pub payers: Vec<SecretKey>,
    /// Device keys; device `i` is [device_id]`(i)`.
    pub devices: Vec<SecretKey>,
}

impl Fixture {
    /// Builds the state.
    pub fn new(payers: usize, devices: usize) -> Self {
        let admin = key(Algorithm::Ed25519, "admin");
        let payers: Vec<SecretKey> = (0..payers)
            .map(|i| key(Algorithm::Ed25519, &format!("payer-{i}")))
            .collect();
        let org = "ops".parse().expect("an org id");
        let cny = "CNY".parse().expect("an asset code");
        let mut accounts = vec![GenesisAccount {
            account: admin.public_key().account_id(),
            organization: Some("ops".parse().expect("an org id")),
            admin: true,
            balances: BTreeMap::new(),
            tier: None,
        }];
        accounts.extend(payers.iter().map(|k| {
            GenesisAccount {
                account: k.public_key().account_id(),
                organization: None,
                admin: false,
                balances: [("CNY".parse().expect("an asset code"), Amount(1_000_000))]
                    .into_iter()
                    .collect(),
                tier: None,
            }
        }));
        let genesis = Genesis {
            chain_name: "verity-bench".into(),
            genesis_time_ms: TIME_MS - 3_600_000,
            validators: vec![GenesisValidator {
                name: "node0".into(),
                public_key: "11".repeat(32),
                organization: "ops".parse().expect("an org id"),
            }],
            organizations: vec![GenesisOrganization {
                id: org,
                name: "Operations".into(),
                roles: [Role::Validator, Role::Operator, Role::Issuer]
                    .into_iter()
                    .collect(),
            }],
            assets: vec![GenesisAsset {
                code: cny,
                decimals: 2,
                issuer: "ops".parse().expect("an org id"),
                name: "yuan".into(),
            }],
            accounts,
            tiers: Vec::new(),
            default_tier: None,
        };
        let chain_id = genesis.chain_id();
        let mut state = MapState::default();
        let mut overlay = Overlay::new(&state);
        apply_genesis(&mut overlay, &genesis);
        let writes = overlay.into_writes();
        state.commit(writes);

        let devices: Vec<SecretKey> = (0..devices)
            .map(|i| key(Algorithm::Ed25519, &format!("device-{i}")))
            .collect();
        let env = Self::env_of(chain_id, 1);
        for (i, dk) in devices.iter().enumerate() {
            let tx = Transaction {
                signer: admin.public_key(),
                nonce: Nonce(i as u64),
                body: TxBody::DeviceRegister {
                    device: device_id(i),
                    key: dk.public_key(),
                    meta: DeviceMeta::default(),
                },
            }
            .sign(&admin, &chain_id);
            let mut overlay = Overlay::new(&state);
            block_on(apply_tx(&mut overlay, &env, &tx, &VerifyAll)).expect("device registers");
            let writes = overlay.into_writes();
            state.commit(writes);
        }
        Self {
            state,
            chain_id,
            payers,
            devices,
        }
    }

    fn env_of(chain_id: Hash, height: u64) -> BlockEnv {
        BlockEnv {
            chain_id,
            height,
            timestamp_ms: TIME_MS,
        }
    }

    /// What the next block executes against.
    pub fn env(&self) -> BlockEnv {
        Self::env_of(self.chain_id, 2)
    }

    /// A transfer of 1 minor unit from payer `i` (at nonce 0) to a fresh account.
    pub fn transfer(&self, i: usize) -> verity_types::SignedTransaction {
        let mut to = [0u8; verity_types::ids::ACCOUNT_ID_LEN];
        to.copy_from_slice(
            &sha256(format!("payee-{i}").as_bytes()).0[..verity_types::ids::ACCOUNT_ID_LEN],
        );
        let to = AccountId(to);
        Transaction {
            signer: self.payers[i].public_key(),
            nonce: Nonce(0),
            body: TxBody::Transfer {
                to,
                asset: "CNY".parse().expect("an asset code"),
                amount: Amount(1),
                memo: Memo::default(),
            },
        }
        .sign(&self.payers[i], &self.chain_id)
    }
}
