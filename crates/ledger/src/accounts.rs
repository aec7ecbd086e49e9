//! Wallets and assets: transfers, mints and burns, with the movements of value they cause.

use crate::{
    error::TxError,
    governance,
    state::{
        AccountRecord, AssetRecord, MAX_ASSETS_PER_ACCOUNT, Overlay, Staged, StateReader,
        account_key, asset_key,
    },
};
use verity_types::{AccountId, Amount, AssetCode, Hash, Memo, Role};

/// A movement of value in one account, as its history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    /// The account whose balance changed.
    pub account: AccountId,
    /// The asset.
    pub asset: AssetCode,
    /// Signed change in minor units.
    pub delta: i128,
    /// The other party, if any (none for mint to self or burn).
    pub counterparty: Option<AccountId>,
    /// `transfer`, `mint` or `burn`.
    pub kind: &'static str,
    /// The memo of the transaction.
    pub memo: String,
    /// The transaction that caused it.
    pub tx_id: Hash,
    /// The balance after the movement.
    pub balance_after: u64,
}

/// Reads an account, or the empty account if it was never used.
pub async fn load<R: StateReader>(
    state: &Overlay<'_, R>,
    id: &AccountId,
) -> Result<AccountRecord, TxError> {
    Ok(state.get(&account_key(id)).await?.unwrap_or_default())
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
    let bal = acct.balances.get(asset).copied().unwrap_or(0);
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

fn positive(amount: Amount) -> Result<u64, TxError> {
    if amount.0 == 0 {
        return Err(TxError::InvalidAmount("amount must be more than zero"));
    }
    Ok(amount.0)
}

/// Context of the transaction being executed.
pub struct TxCtx<'a> {
    /// Its id.
    pub id: Hash,
    /// The signing account.
    pub sender: AccountId,
    /// The signing account's record, with the nonce already advanced.
    pub sender_record: &'a mut AccountRecord,
}

/// Moves `amount` of `asset` from the sender to `to`.
pub async fn transfer<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: TxCtx<'_>,
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
    let sender_after = debit(tx.sender_record, asset, amount)?;
    let mut recipient = load(state, to).await?;
    let recipient_after = credit(&mut recipient, asset, amount)?;
    staged.put(account_key(to), &recipient);
    Ok(vec![
        Movement {
            account: tx.sender,
            asset: asset.clone(),
            delta: -(amount as i128),
            counterparty: Some(*to),
            kind: "transfer",
            memo: memo.as_str().to_string(),
            tx_id: tx.id,
            balance_after: sender_after,
        },
        Movement {
            account: *to,
            asset: asset.clone(),
            delta: amount as i128,
            counterparty: Some(tx.sender),
            kind: "transfer",
            memo: memo.as_str().to_string(),
            tx_id: tx.id,
            balance_after: recipient_after,
        },
    ])
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

/// Creates `amount` of `asset` in `to`. Issuer only.
pub async fn mint<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: TxCtx<'_>,
    to: &AccountId,
    asset: &AssetCode,
    amount: Amount,
    memo: &Memo,
    staged: &mut Staged,
) -> Result<Vec<Movement>, TxError> {
    let amount = positive(amount)?;
    let mut record = issuer_only(state, &tx, asset, "mint").await?;
    record.supply = record.supply.checked_add(amount).ok_or(TxError::Overflow)?;
    let after = if *to == tx.sender {
        credit(tx.sender_record, asset, amount)?
    } else {
        let mut recipient = load(state, to).await?;
        let after = credit(&mut recipient, asset, amount)?;
        staged.put(account_key(to), &recipient);
        after
    };
    staged.put(asset_key(asset), &record);
    Ok(vec![Movement {
        account: *to,
        asset: asset.clone(),
        delta: amount as i128,
        counterparty: (*to != tx.sender).then_some(tx.sender),
        kind: "mint",
        memo: memo.as_str().to_string(),
        tx_id: tx.id,
        balance_after: after,
    }])
}

/// Destroys `amount` of `asset` held by the sender. Issuer only.
pub async fn burn<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: TxCtx<'_>,
    asset: &AssetCode,
    amount: Amount,
    memo: &Memo,
    staged: &mut Staged,
) -> Result<Vec<Movement>, TxError> {
    let amount = positive(amount)?;
    let mut record = issuer_only(state, &tx, asset, "burn").await?;
    let after = debit(tx.sender_record, asset, amount)?;
    record.supply = record
        .supply
        .checked_sub(amount)
        .ok_or(TxError::InvalidAmount("burn exceeds supply"))?;
    staged.put(asset_key(asset), &record);
    Ok(vec![Movement {
        account: tx.sender,
        asset: asset.clone(),
        delta: -(amount as i128),
        counterparty: None,
        kind: "burn",
        memo: memo.as_str().to_string(),
        tx_id: tx.id,
        balance_after: after,
    }])
}
