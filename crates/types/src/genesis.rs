//! The genesis document: the validators, the founding organizations with their roles, the assets
//! and the initial balances. Every node of a network holds the same file; its hash is the chain
//! id that every transaction signature covers.

use crate::{AccountId, Amount, AssetCode, Hash, OrgId, TierId, hash::sha256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most validators a genesis may name.
pub const MAX_VALIDATORS: usize = 100;
/// Longest name (chain, organization, asset, validator), in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Most wallet tiers a genesis may define.
pub const MAX_TIERS: usize = 32;
/// Most distinct assets one genesis account may hold.
pub const MAX_GENESIS_ACCOUNT_ASSETS: usize = 64;

/// A power an organization holds on the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs validators.
    Validator,
    /// Issues (mints and burns) assets.
    Issuer,
    /// Operates devices.
    Operator,
    /// Supervises: freezes accounts, sets tiers, sees everything.
    Regulator,
    /// Reads and audits.
    Auditor,
}

/// A validator of the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// A human name, e.g. `node0`.
    pub name: String,
    /// Its consensus Ed25519 public key, 32 bytes in hex.
    pub public_key: String,
    /// The organization that runs it.
    pub organization: OrgId,
}

/// A founding organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisOrganization {
    /// Its id.
    pub id: OrgId,
    /// Its display name.
    pub name: String,
    /// Its roles.
    pub roles: BTreeSet<Role>,
}

/// An asset defined at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisAsset {
    /// Its code, e.g. `CNY`.
    pub code: AssetCode,
    /// Decimal places of its minor unit.
    pub decimals: u8,
    /// The organization that issues it (must have the issuer role).
    pub issuer: OrgId,
    /// Its display name.
    pub name: String,
}

/// An account that exists at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisAccount {
    /// Its id.
    pub account: AccountId,
    /// The organization it acts for, if any.
    #[serde(default)]
    pub organization: Option<OrgId>,
    /// Whether it administers its organization (acts on any of the organization's devices).
    #[serde(default)]
    pub admin: bool,
    /// Initial balances in minor units, by asset code.
    #[serde(default)]
    pub balances: std::collections::BTreeMap<AssetCode, Amount>,
    /// Its wallet tier; the genesis default tier when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierId>,
}

/// What a wallet tier allows for one asset; an absent limit does not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TierLimits {
    /// Largest single payment, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_payment: Option<Amount>,
    /// Largest total paid in one day (UTC, by block time), minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<Amount>,
    /// Largest balance, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Amount>,
}

/// A wallet tier: limits per asset (an asset it does not name is not limited).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisTier {
    /// Its id, e.g. `anonymous`.
    pub id: TierId,
    /// Its display name.
    pub name: String,
    /// Limits by asset code.
    #[serde(default)]
    pub limits: std::collections::BTreeMap<AssetCode, TierLimits>,
}

/// The genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The network's name.
    pub chain_name: String,
    /// Timestamp of the genesis block, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// The validators.
    pub validators: Vec<GenesisValidator>,
    /// The founding organizations.
    pub organizations: Vec<GenesisOrganization>,
    /// The assets.
    pub assets: Vec<GenesisAsset>,
    /// Accounts with organizations or initial balances.
    pub accounts: Vec<GenesisAccount>,
    /// Wallet tiers (none: no account is limited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<GenesisTier>,
    /// The tier of every account that was not put in another; required when there are tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_tier: Option<TierId>,
}

/// Why a genesis document is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenesisError {
    /// Not valid JSON of the expected shape.
    #[error("genesis is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// A rule about its content is broken.
    #[error("genesis is inconsistent: {0}")]
    Invalid(String),
}

impl Genesis {
    /// Parses and validates a genesis document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GenesisError> {
        let genesis: Self = serde_json::from_slice(bytes)?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// The canonical JSON form (what the chain id hashes).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("genesis serializes")
    }

    /// The chain id: SHA-256 of the canonical JSON.
    pub fn chain_id(&self) -> Hash {
        sha256(&self.to_canonical_json())
    }

    /// The validators' consensus public keys, in genesis order.
    pub fn validator_keys(&self) -> Result<Vec<[u8; 32]>, GenesisError> {
        self.validators
            .iter()
            .map(|v| {
                hex::decode(&v.public_key)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        GenesisError::Invalid(format!(
                            "validator {} has a public key that is not 32 bytes of hex",
                            v.name
                        ))
                    })
            })
            .collect()
    }

    /// Checks the rules a usable genesis follows.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.validators.is_empty() || self.validators.len() > MAX_VALIDATORS {
            return bad(format!("needs 1 to {MAX_VALIDATORS} validators"));
        }
        let keys = self.validator_keys()?;
        let names = std::iter::once(&self.chain_name)
            .chain(self.validators.iter().map(|v| &v.name))
            .chain(self.organizations.iter().map(|o| &o.name))
            .chain(self.assets.iter().map(|a| &a.name));
        for name in names {
            if name.len() > MAX_NAME_BYTES {
                return bad(format!("name {name:?} is over {MAX_NAME_BYTES} bytes"));
            }
        }
        if keys.iter().collect::<BTreeSet<_>>().len() != keys.len() {
            return bad("two validators share a key".into());
        }
        let mut orgs = BTreeSet::new();
        for org in &self.organizations {
            if !orgs.insert(&org.id) {
                return bad(format!("organization {} is listed twice", org.id));
            }
        }
        for v in &self.validators {
            if !orgs.contains(&v.organization) {
                return bad(format!("validator {} names unknown organization", v.name));
            }
        }
        let mut codes = BTreeSet::new();
        for asset in &self.assets {
            if !codes.insert(&asset.code) {
                return bad(format!("asset {} is listed twice", asset.code));
            }
            if asset.decimals > crate::ids::ASSET_DECIMALS_MAX {
                return bad(format!("asset {} has too many decimals", asset.code));
            }
            let issuer = self.organizations.iter().find(|o| o.id == asset.issuer);
            match issuer {
                Some(o) if o.roles.contains(&Role::Issuer) => {}
                _ => return bad(format!("asset {} needs an issuer organization", asset.code)),
            }
        }
        let mut accounts = BTreeSet::new();
        let mut supply = std::collections::BTreeMap::<&AssetCode, u64>::new();
        let mut tiers = BTreeSet::new();
        for tier in &self.tiers {
            if !tiers.insert(&tier.id) {
                return bad(format!("tier {} is listed twice", tier.id));
            }
            if tier.name.len() > MAX_NAME_BYTES {
                return bad(format!(
                    "tier {} has a name over {MAX_NAME_BYTES} bytes",
                    tier.id
                ));
            }
            if tier.limits.len() > MAX_GENESIS_ACCOUNT_ASSETS {
                return bad(format!("tier {} limits too many assets", tier.id));
            }
            if let Some(code) = tier.limits.keys().find(|c| !codes.contains(c)) {
                return bad(format!("tier {} limits unknown asset {code}", tier.id));
            }
        }
        match &self.default_tier {
            Some(t) if !tiers.contains(t) => {
                return bad(format!("default tier {t} is not defined"));
            }
            None if !tiers.is_empty() => return bad("tiers need a default_tier".into()),
            _ => {}
        }
        if self.tiers.len() > MAX_TIERS {
            return bad(format!("more than {MAX_TIERS} tiers"));
        }
        for acct in &self.accounts {
            if !accounts.insert(acct.account) {
                return bad(format!("account {} is listed twice", acct.account));
            }
            if let Some(org) = &acct.organization
                && !orgs.contains(org)
            {
                return bad(format!(
                    "account {} names unknown organization",
                    acct.account
                ));
            }
            if acct.admin && acct.organization.is_none() {
                return bad(format!(
                    "account {} is an admin but names no organization",
                    acct.account
                ));
            }
            if let Some(t) = &acct.tier
                && !tiers.contains(t)
            {
                return bad(format!("account {} names unknown tier {t}", acct.account));
            }
            if acct.balances.len() > MAX_GENESIS_ACCOUNT_ASSETS {
                return bad(format!("account {} holds too many assets", acct.account));
            }
            for (code, amount) in &acct.balances {
                if !codes.contains(code) {
                    return bad(format!(
                        "account {} holds unknown asset {code}",
                        acct.account
                    ));
                }
                let total = supply.entry(code).or_default();
                *total = total
                    .checked_add(amount.0)
                    .ok_or_else(|| GenesisError::Invalid(format!("supply of {code} overflows")))?;
            }
        }
        Ok(())
    }
}
