//! Organizations and their roles, founded by the genesis document.

use crate::{
    error::TxError,
    state::{
        AccountRecord, AssetRecord, MAX_NAME_LEN, OrgRecord, Overlay, Settings, StateReader,
        TierRecord, account_key, asset_key, org_key, settings_key, tier_key,
    },
};
use verity_types::{Genesis, OrgId, Role};

/// Whether `org` holds `role`.
pub async fn has_role<R: StateReader>(
    state: &Overlay<'_, R>,
    org: &OrgId,
    role: Role,
) -> Result<bool, TxError> {
    let record: Option<OrgRecord> = state.get(&org_key(org)).await?;
    Ok(record.is_some_and(|r| r.roles.contains(&role)))
}

/// Writes the genesis organizations, assets and accounts into an empty state.
pub fn apply_genesis<R: StateReader>(state: &mut Overlay<'_, R>, genesis: &Genesis) {
    for org in &genesis.organizations {
        let record = OrgRecord {
            id: org.id.clone(),
            name: org.name.clone(),
            roles: org.roles.iter().copied().collect(),
        };
        state.put(org_key(&org.id), &record);
    }
    for asset in &genesis.assets {
        let supply = genesis
            .accounts
            .iter()
            .filter_map(|a| a.balances.get(&asset.code))
            .map(|a| a.0)
            .sum();
        let record = AssetRecord {
            code: asset.code.clone(),
            decimals: asset.decimals,
            issuer: asset.issuer.clone(),
            name: asset
                .name
                .chars()
                .take(crate::state::MAX_NAME_LEN)
                .collect(),
            supply,
        };
        state.put(asset_key(&asset.code), &record);
    }
    for tier in &genesis.tiers {
        let record = TierRecord {
            id: tier.id.clone(),
            name: tier.name.chars().take(MAX_NAME_LEN).collect(),
            limits: tier.limits.clone(),
        };
        state.put(tier_key(&tier.id), &record);
    }
    if genesis.default_tier.is_some() {
        let settings = Settings {
            default_tier: genesis.default_tier.clone(),
        };
        state.put(settings_key(), &settings);
    }
    for acct in &genesis.accounts {
        let record = AccountRecord {
            nonce: 0,
            organization: acct.organization.clone(),
            admin: acct.admin,
            tier: acct.tier.clone(),
            balances: acct
                .balances
                .iter()
                .filter(|(_, a)| a.0 > 0)
                .map(|(c, a)| (c.clone(), a.0))
                .collect(),
            ..AccountRecord::default()
        };
        state.put(account_key(&acct.account), &record);
    }
}
