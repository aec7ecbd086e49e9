//! Wallets and assets: transfers, mints and burns with the movements of value they cause; wallet
//! tiers with their per-asset limits (single payment, daily total by block time, balance); and
//! the regulator's freeze. Every payment on the ledger — a transfer, a cleared cheque, a
//! multi-signature treasury's transfer — goes through [pay] and [receive], so the limits and the
//! freeze hold for all of them.

use crate::{
    error::TxError,
    governance,
    state::{
        AccountRecord, AssetRecord, MAX_ASSETS_PER_ACCOUNT, Overlay, Settings, Staged, StateReader,
        TierRecord, account_key, asset_key, settings_key, tier_key,
    },
};
use verity_types::{
    AccountId, Amount, AssetCode, Hash, Memo, Role, TierId,
    receipt::{Movement, MovementKind},
};

/// Length of the day the daily limit counts, in milliseconds of block time (UTC days).
pub const DAY_MS: u64 = 86_400_000;

/// Reads an account, or the empty account if it was never used.
pub async fn load<R: StateReader>(
    state: &Overlay<'_, R>,
    id: &AccountId,
) -> Result<AccountRecord, TxError> {
    Ok(state.get(&account_key(id)).await?.unwrap_or_default())
}

/// Reads an account as this transaction has left it so far.
pub async fn load_staged<R: StateReader>(
    state: &Overlay<'_, R>,
    staged: &Staged,
    id: &AccountId,
) -> Result<AccountRecord, TxError> {
    Ok(staged
        .get(state, &account_key(id))
        .await?
        .unwrap_or_default())
}

/// Reads an asset.
pub async fn load_asset<R: StateReader>(
    state: &Overlay<'_, R>,
    code: &AssetCode,
) -> Result<AssetRecord, TxError> {
    state
        .get(&asset_key(code))
        .await?
        .ok_or_else(|| TxError::UnknownAsset(code.clone()))
}

/// The tier an account is in: its own, else the network's default; none if the network has
/// no tiers.
pub async fn tier_of<R: StateReader>(
    state: &Overlay<'_, R>,
    acct: &AccountRecord,
) -> Result<Option<TierRecord>, TxError> {
    let id = match &acct.tier {
        Some(t) => Some(t.clone()),
        None => {
            let settings: Option<Settings> = state.get(&settings_key()).await?;
            settings.and_then(|s| s.default_tier)
        }
    };
    match id {
        Some(id) => state.get(&tier_key(&id)).await,
        None => Ok(None),
    }
}

/// What a transaction is executing as: its id, the acting account (the signer, or a
/// multi-signature account running an approved proposal) and the block time.
pub struct TxCtx<'a> {
    /// Its id.
    pub id: Hash,
    /// The acting account.
    pub sender: AccountId,
    /// The acting account's record at the start of the operation.
    pub sender_record: &'a AccountRecord,
    /// Block time, ms since the Unix epoch.
    pub time_ms: u64,
}

fn positive(amount: Amount) -> Result<u64, TxError> {
    if amount.0 == 0 {
        return Err(TxError::InvalidAmount("amount must be more than zero"));
    }
    Ok(amount.0)
}

/// Debits `amount` of `asset` from `payer` as a payment: refused if the payer is frozen, over a
/// limit of its tier or short of funds; counts it against today's limit. Returns the balance
/// after.
pub async fn pay<R: StateReader>(
    state: &Overlay<'_, R>,
    staged: &mut Staged,
    time_ms: u64,
    payer: &AccountId,
    asset: &AssetCode,
    amount: u64,
) -> Result<u64, TxError> {
    let mut acct = load_staged(state, staged, payer).await?;
    if let Some(reason) = &acct.frozen {
        return Err(TxError::SenderFrozen {
            account: *payer,
            reason: reason.clone(),
        });
    }
    let day = time_ms / DAY_MS;
    let spent_today = acct.spent_on(day, asset);
    if let Some(tier) = tier_of(state, &acct).await?
        && let Some(limits) = tier.limits.get(asset)
    {
        if let Some(limit) = limits.single_payment
            && amount > limit.0
        {
            return Err(TxError::LimitSinglePayment {
                tier: tier.id,
                asset: asset.clone(),
                limit,
                amount: Amount(amount),
            });
        }
        if let Some(limit) = limits.daily
            && spent_today.saturating_add(amount) > limit.0
        {
            return Err(TxError::LimitDaily {
                tier: tier.id,
                asset: asset.clone(),
                limit,
                spent: Amount(spent_today),
                amount: Amount(amount),
            });
        }
    }
    let after = debit(&mut acct, asset, amount)?;
    if acct.spent_day != day {
        acct.spent_day = day;
        acct.spent.clear();
    }
    acct.spent
        .insert(asset.clone(), spent_today.saturating_add(amount));
    staged.put(account_key(payer), &acct);
    Ok(after)
}

/// Credits `amount` of `asset` to `payee`: refused if the payee is frozen or would go over its
/// tier's balance limit. Returns the balance after.
pub async fn receive<R: StateReader>(
    state: &Overlay<'_, R>,
    staged: &mut Staged,
    payee: &AccountId,
    asset: &AssetCode,
    amount: u64,
) -> Result<u64, TxError> {
    let mut acct = load_staged(state, staged, payee).await?;
    if let Some(reason) = &acct.frozen {
        return Err(TxError::RecipientFrozen {
            account: *payee,
            reason: reason.clone(),
        });
    }
    let after = credit(&mut acct, asset, amount)?;
    if let Some(tier) = tier_of(state, &acct).await?
        && let Some(limit) = tier.limits.get(asset).and_then(|l| l.balance)
        && after > limit.0
    {
        return Err(TxError::LimitBalance {
            account: *payee,
            tier: tier.id,
            asset: asset.clone(),
            limit,
            balance: Amount(after),
        });
    }
    staged.put(account_key(payee), &acct);
    Ok(after)
}

fn credit(acct: &mut AccountRecord, asset: &AssetCode, amount: u64) -> Result<u64, TxError> {
    let entry_exists = acct.balances.contains_key(asset);
    if !entry_exists && acct.balances.len() >= MAX_ASSETS_PER_ACCOUNT {
        return Err(TxError::TooManyAssets(MAX_ASSETS_PER_ACCOUNT));
    }
    let bal = acct.balances.entry(asset.clone()).or_insert(0);
    *bal = bal.checked_add(amount).ok_or(TxError::Overflow)?;
    Ok(*bal)
}

fn debit(acct: &mut AccountRecord, asset: &AssetCode, amount: u64) -> Result<u64, TxError> {
    let bal = acct.balance(asset);
    if bal < amount {
        return Err(TxError::InsufficientFunds {
            asset: asset.clone(),
            balance: Amount(bal),
            needed: Amount(amount),
        });
    }
    let after = bal - amount;
    if after == 0 {
        acct.balances.remove(asset);
    } else {
        acct.balances.insert(asset.clone(), after);
    }
    Ok(after)
}

/// The two movements of a payment from `from` to `to`.
#[allow(clippy::too_many_arguments)]
pub fn payment_movements(
    from: AccountId,
    from_after: u64,
    to: AccountId,
    to_after: u64,
    asset: &AssetCode,
    amount: u64,
    kind: MovementKind,
    memo: &str,
) -> Vec<Movement> {
    vec![
        Movement {
            account: from,
            asset: asset.clone(),
            delta: -(amount as i128),
            counterparty: Some(to),
            kind,
            memo: memo.to_string(),
            balance_after: from_after,
        },
        Movement {
            account: to,
            asset: asset.clone(),
            delta: amount as i128,
            counterparty: Some(from),
            kind,
            memo: memo.to_string(),
            balance_after: to_after,
        },
    ]
}

/// Moves `amount` of `asset` from the sender to `to`.
pub async fn transfer<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    to: &AccountId,
    asset: &AssetCode,
    amount: Amount,
    memo: &Memo,
    staged: &mut Staged,
) -> Result<Vec<Movement>, TxError> {
    let amount = positive(amount)?;
    if *to == tx.sender {
        return Err(TxError::SelfTransfer(*to));
    }
    load_asset(state, asset).await?;
    let from_after = pay(state, staged, tx.time_ms, &tx.sender, asset, amount).await?;
    let to_after = receive(state, staged, to, asset, amount).await?;
    Ok(payment_movements(
        tx.sender,
        from_after,
        *to,
        to_after,
        asset,
        amount,
        MovementKind::Transfer,
        memo.as_str(),
    ))
}

/// Refuses unless the sender acts for the issuer of `asset`; returns the asset.
async fn issuer_only<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    asset: &AssetCode,
    what: &str,
) -> Result<AssetRecord, TxError> {
    let record = load_asset(state, asset).await?;
    let org = tx.sender_record.organization.as_ref();
    let is_issuer = org == Some(&record.issuer)
        && governance::has_role(state, &record.issuer, Role::Issuer).await?;
    if !is_issuer {
        return Err(TxError::Unauthorized(format!(
            "only an account of {} may {what} {asset}",
            record.issuer
        )));
    }
    Ok(record)
}

/// Creates `amount` of `asset` in `to`. Issuer only; the recipient's freeze and balance limit
/// apply.
pub async fn mint<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    to: &AccountId,
    asset: &AssetCode,
    amount: Amount,
    memo: &Memo,
    staged: &mut Staged,
) -> Result<Vec<Movement>, TxError> {
    let amount = positive(amount)?;
    let mut record = issuer_only(state, tx, asset, "mint").await?;
    if let Some(reason) = &tx.sender_record.frozen {
        return Err(TxError::SenderFrozen {
            account: tx.sender,
            reason: reason.clone(),
        });
    }
    record.supply = record.supply.checked_add(amount).ok_or(TxError::Overflow)?;
    let after = receive(state, staged, to, asset, amount).await?;
    staged.put(asset_key(asset), &record);
    Ok(vec![Movement {
        account: *to,
        asset: asset.clone(),
        delta: amount as i128,
        counterparty: (*to != tx.sender).then_some(tx.sender),
        kind: MovementKind::Mint,
        memo: memo.as_str().to_string(),
        balance_after: after,
    }])
}

/// Destroys `amount` of `asset` held by the sender. Issuer only; a frozen account cannot burn.
pub async fn burn<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    asset: &AssetCode,
    amount: Amount,
    memo: &Memo,
    staged: &mut Staged,
) -> Result<Vec<Movement>, TxError> {
    let amount = positive(amount)?;
    let mut record = issuer_only(state, tx, asset, "burn").await?;
    let mut acct = load_staged(state, staged, &tx.sender).await?;
    if let Some(reason) = &acct.frozen {
        return Err(TxError::SenderFrozen {
            account: tx.sender,
            reason: reason.clone(),
        });
    }
    let after = debit(&mut acct, asset, amount)?;
    record.supply = record
        .supply
        .checked_sub(amount)
        .ok_or(TxError::InvalidAmount("burn exceeds supply"))?;
    staged.put(account_key(&tx.sender), &acct);
    staged.put(asset_key(asset), &record);
    Ok(vec![Movement {
        account: tx.sender,
        asset: asset.clone(),
        delta: -(amount as i128),
        counterparty: None,
        kind: MovementKind::Burn,
        memo: memo.as_str().to_string(),
        balance_after: after,
    }])
}

async fn acts_for_any<R: StateReader>(
    state: &Overlay<'_, R>,
    acct: &AccountRecord,
    roles: &[Role],
) -> Result<bool, TxError> {
    let Some(org) = &acct.organization else {
        return Ok(false);
    };
    for role in roles {
        if governance::has_role(state, org, *role).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Puts `account` in `tier`; an account of an issuer or regulator organization may.
pub async fn set_tier<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    account: &AccountId,
    tier: &TierId,
    staged: &mut Staged,
) -> Result<(), TxError> {
    if !acts_for_any(state, tx.sender_record, &[Role::Issuer, Role::Regulator]).await? {
        return Err(TxError::Unauthorized(
            "only an account of an issuer or regulator organization may set tiers".into(),
        ));
    }
    if state.get::<TierRecord>(&tier_key(tier)).await?.is_none() {
        return Err(TxError::UnknownTier(tier.clone()));
    }
    let mut acct = load_staged(state, staged, account).await?;
    acct.tier = Some(tier.clone());
    staged.put(account_key(account), &acct);
    Ok(())
}

/// Freezes or unfreezes `account`; an account of a regulator organization may.
pub async fn set_frozen<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    account: &AccountId,
    frozen: bool,
    reason: &Memo,
    staged: &mut Staged,
) -> Result<(), TxError> {
    if !acts_for_any(state, tx.sender_record, &[Role::Regulator]).await? {
        return Err(TxError::Unauthorized(
            "only an account of a regulator organization may freeze or unfreeze accounts".into(),
        ));
    }
    let mut acct = load_staged(state, staged, account).await?;
    match (frozen, acct.frozen.is_some()) {
        (true, true) => {
            return Err(TxError::FreezeState(format!(
                "account {account} is already frozen"
            )));
        }
        (false, false) => {
            return Err(TxError::FreezeState(format!(
                "account {account} is not frozen"
            )));
        }
        (true, false) if reason.as_str().is_empty() => {
            return Err(TxError::FreezeState(
                "freezing an account needs a reason".into(),
            ));
        }
        _ => {}
    }
    acct.frozen = frozen.then(|| reason.as_str().to_string());
    staged.put(account_key(account), &acct);
    Ok(())
}
