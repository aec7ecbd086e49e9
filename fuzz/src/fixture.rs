//! The fixed network the targets check against and the seeds are built for: four validators
//! whose consensus keys come from fixed seeds, one bank organization that runs them and issues
//! CNY, and fixed account and device keys. Everything is deterministic, so seeds and
//! reproducers stay valid from one run to the next.

use commonware_codec::RangeCfg;
use commonware_cryptography::{Signer as _, ed25519};
use std::sync::OnceLock;
use verity_types::{
    AccountId, Algorithm, Amount, Genesis, Hash, PublicKey, SecretKey,
    block::BlockLimits,
    genesis::{GenesisAccount, GenesisAsset, GenesisOrganization, GenesisValidator, Role},
};

/// Validators of the fixture network (a quorum is 3 of them).
pub const VALIDATORS: u64 = 4;

/// What the block target accepts: limits an input of a few KiB can reach, so the fuzzer also
/// explores the refusals at the limits.
pub const BLOCK_LIMITS: BlockLimits = BlockLimits {
    max_txs: 64,
    max_readings: 64,
    max_bytes: 1 << 20,
    known: None,
};

/// Most transactions in one gossip message: mirrors `verity_node::gossip::GOSSIP_BATCH_TXS`.
/// verity-node is not a dependency (its network, storage and HTTP stack would triple the
/// instrumented build); scripts/fuzz checks that the two constants agree.
pub const GOSSIP_BATCH_TXS: usize = 512;

/// The codec configuration the node's gossip receiver (`verity_node::gossip::start`) decodes a
/// batch of transactions with.
pub fn gossip_cfg() -> (RangeCfg<usize>, ()) {
    (RangeCfg::from(0..=GOSSIP_BATCH_TXS), ())
}

/// The validators' consensus signing keys, in genesis order.
pub fn validator_keys() -> Vec<ed25519::PrivateKey> {
    (0..VALIDATORS)
        .map(ed25519::PrivateKey::from_seed)
        .collect()
}

/// Fixed account key number `n` (1 to 255) of algorithm `alg`.
pub fn account_key(alg: Algorithm, n: u8) -> SecretKey {
    // Any 32 equal non-zero bytes are a valid scalar of both curves.
    SecretKey::from_bytes(alg, &[n.max(1); 32]).expect("a fixed valid secret key")
}

/// The key of the fixture's device of algorithm `alg` (the reading target verifies with it).
pub fn device_key(alg: Algorithm) -> SecretKey {
    account_key(alg, 200)
}

/// The public key of [device_key], computed once.
pub fn device_public_key(alg: Algorithm) -> PublicKey {
    static KEYS: OnceLock<[PublicKey; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [
            device_key(Algorithm::Ed25519).public_key(),
            device_key(Algorithm::P256).public_key(),
        ]
    });
    match alg {
        Algorithm::Ed25519 => keys[0],
        Algorithm::P256 => keys[1],
    }
}

/// The account that issues CNY (the bank's admin).
pub fn issuer_account() -> AccountId {
    account_key(Algorithm::Ed25519, 1).public_key().account_id()
}

/// The fixture genesis, built once.
pub fn genesis() -> &'static Genesis {
    static GENESIS: OnceLock<Genesis> = OnceLock::new();
    GENESIS.get_or_init(build_genesis)
}

/// The fixture's chain id, computed once.
pub fn chain_id() -> Hash {
    static CHAIN_ID: OnceLock<Hash> = OnceLock::new();
    *CHAIN_ID.get_or_init(|| genesis().chain_id())
}

fn build_genesis() -> Genesis {
    let bank = || "bank".parse().expect("a valid organization id");
    let cny = || "CNY".parse().expect("a valid asset code");
    let genesis = Genesis {
        chain_name: "fuzz".into(),
        genesis_time_ms: 1_760_000_000_000,
        validators: validator_keys()
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisValidator {
                name: format!("v{i}"),
                public_key: hex::encode(k.public_key().as_ref()),
                organization: bank(),
            })
            .collect(),
        organizations: vec![GenesisOrganization {
            id: bank(),
            name: "Bank".into(),
            roles: [Role::Validator, Role::Issuer, Role::Operator]
                .into_iter()
                .collect(),
        }],
        assets: vec![GenesisAsset {
            code: cny(),
            decimals: 2,
            issuer: bank(),
            name: "yuan".into(),
        }],
        accounts: vec![GenesisAccount {
            account: issuer_account(),
            organization: Some(bank()),
            admin: true,
            balances: [(cny(), Amount(1_000_000))].into_iter().collect(),
            tier: None,
        }],
        tiers: Vec::new(),
        default_tier: None,
    };
    genesis.validate().expect("the fixture genesis is valid");
    genesis
}
