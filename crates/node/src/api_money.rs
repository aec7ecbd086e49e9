//! API routes for money: account history with filters, transaction proofs, wallet tiers,
//! multi-signature proposals and cheques (docs/api.md, docs/wallets.md, docs/cheques.md).

use crate::{
    api::{
        ApiError, ApiResult, ApiState, body_json, certified_headers, finalized_block, index_of,
        page_limit, trees_of,
    },
    cheque_index::{ChequeQuery, cheque_json},
    index::{HistoryQuery, IndexError},
};
use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::IntoResponse,
};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use verity_ledger::{
    cheques::{CHEQUE_STATES, ChequeRecord},
    multisig::Proposal,
    state::{TierRecord, cheque_key, proposal_key, tier_key},
};
use verity_types::{
    AccountId, AssetCode, Hash, TierId,
    hash::parse_hash,
    proof::{MerklePath, PROOF_VERSION, TxProof},
    receipt::MovementKind,
};

fn parse_account(id: &str) -> Result<AccountId, ApiError> {
    id.parse()
        .map_err(|e: verity_types::ids::IdError| ApiError::bad_request(e.to_string()))
}

fn parse_id(id: &str, what: &str) -> Result<Hash, ApiError> {
    parse_hash(id).ok_or_else(|| ApiError::bad_request(format!("{what} must be 64 hex characters")))
}

fn index_error(e: IndexError) -> ApiError {
    match e {
        IndexError::BadCursor(_) => ApiError::bad_request(e.to_string()),
        _ => ApiError::internal(e.to_string()),
    }
}

/// Query parameters of `GET /v1/accounts/{id}/history`.
#[derive(Deserialize)]
pub struct HistoryParams {
    limit: Option<usize>,
    cursor: Option<String>,
    order: Option<String>,
    asset: Option<String>,
    direction: Option<String>,
    counterparty: Option<String>,
    kind: Option<String>,
    from_height: Option<u64>,
    to_height: Option<u64>,
    from_time: Option<u64>,
    to_time: Option<u64>,
}

/// `GET /v1/accounts/{id}/history`: filtered, paged movements of value.
pub async fn history(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    q: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let account = parse_account(&id)?;
    let limit = page_limit(&s, q.limit)?;
    let descending = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::bad_request("order must be asc or desc")),
    };
    if let Some(a) = &q.asset {
        a.parse::<AssetCode>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if let Some(d) = &q.direction
        && d != "in"
        && d != "out"
    {
        return Err(ApiError::bad_request("direction must be in or out"));
    }
    if let Some(k) = &q.kind {
        k.parse::<MovementKind>().map_err(ApiError::bad_request)?;
    }
    let counterparty = q.counterparty.as_deref().map(parse_account).transpose()?;
    let query = HistoryQuery {
        asset: q.asset,
        direction: q.direction,
        counterparty,
        kind: q.kind,
        from_height: q.from_height,
        to_height: q.to_height,
        from_ms: q.from_time,
        to_ms: q.to_time,
        cursor: q.cursor,
        limit,
        descending,
    };
    let page = index_of(&s)?
        .history(&account, &query)
        .map_err(index_error)?;
    Ok(Json(page).into_response())
}

/// Builds the proof of a committed transaction and its receipt.
pub async fn build_tx_proof(s: &ApiState, id: &Hash) -> Result<TxProof, ApiError> {
    let index = index_of(s)?;
    let loc = index.tx_location(id).map_err(index_error)?;
    let Some((height, i)) = loc.filter(|(h, _)| *h <= s.chain.tip().height) else {
        return Err(if s.chain.pending_tx(id) {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_committed",
                "the transaction is not committed (yet)",
            )
        } else {
            ApiError::not_found(format!("transaction {id} is not committed on this node"))
        });
    };
    let block = finalized_block(s, height).await?;
    let tx = block
        .txs
        .get(i as usize)
        .ok_or_else(|| ApiError::internal("index points past the block"))?;
    let trees = trees_of(s, &block)?;
    let txs_path = MerklePath::in_tree(&trees.txs, i)
        .ok_or_else(|| ApiError::internal("tx index out of range"))?;
    let receipt_path = MerklePath::in_tree(&trees.receipts, i)
        .ok_or_else(|| ApiError::internal("receipt out of range"))?;
    let receipt = index
        .tx_receipt(id)
        .map_err(index_error)?
        .ok_or_else(|| ApiError::internal("a committed transaction has no receipt"))?;
    let (headers, finalization) = certified_headers(s, &block.header).await?;
    Ok(TxProof {
        version: PROOF_VERSION,
        kind: "tx".into(),
        chain_id: s.chain.chain_id.to_string(),
        tx_id: id.to_string(),
        tx: hex::encode(tx.to_bytes()),
        height,
        txs_path,
        receipt,
        receipt_path,
        headers,
        finalization,
    })
}

/// `GET /v1/txs/{id}/proof`.
pub async fn tx_proof(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "transaction id")?;
    Ok(Json(build_tx_proof(&s, &id).await?).into_response())
}

/// `GET /v1/tiers/{id}`.
pub async fn tier(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let id: TierId = id
        .parse()
        .map_err(|e: verity_types::ids::IdError| ApiError::bad_request(e.to_string()))?;
    let t: TierRecord = s
        .chain
        .record(&tier_key(&id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("tier {id} does not exist")))?;
    Ok(Json(tier_json(&t)).into_response())
}

/// The JSON form of a tier.
pub fn tier_json(t: &TierRecord) -> serde_json::Value {
    let limits: serde_json::Map<String, serde_json::Value> = t
        .limits
        .iter()
        .map(|(code, l)| {
            let amt = |a: Option<verity_types::Amount>| a.map(|a| a.0.to_string());
            (
                code.to_string(),
                json!({
                    "single_payment": amt(l.single_payment),
                    "daily": amt(l.daily),
                    "balance": amt(l.balance),
                }),
            )
        })
        .collect();
    json!({"id": t.id.as_str(), "name": t.name, "limits": limits})
}

/// `GET /v1/accounts/{account}/proposals/{proposal}`: a pending multi-signature proposal.
pub async fn proposal(
    State(s): State<Arc<ApiState>>,
    Path((account, id)): Path<(String, String)>,
) -> ApiResult {
    let account = parse_account(&account)?;
    let id = parse_id(&id, "proposal id")?;
    let p: Proposal = s
        .chain
        .record(&proposal_key(&account, &id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no pending proposal {id} for {account} (it may have executed or been withdrawn)"
            ))
        })?;
    Ok(Json(json!({
        "account": account.to_string(),
        "proposal_id": id.to_string(),
        "proposer": p.proposer.to_string(),
        "approvals": p.approvals.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "operation": body_json(&p.body),
    }))
    .into_response())
}

/// `GET /v1/cheques/{id}`: the cheque and its whole lifecycle.
pub async fn cheque(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "cheque id")?;
    let c: ChequeRecord = s
        .chain
        .record(&cheque_key(&id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("cheque {id} does not exist")))?;
    let events = index_of(&s)?
        .cheque_events(&id, 10_000)
        .map_err(index_error)?;
    let mut j = cheque_json(&c);
    j["events"] = events.into();
    Ok(Json(j).into_response())
}

/// Query parameters of `GET /v1/cheques`.
#[derive(Deserialize)]
pub struct ChequesParams {
    drawer: Option<String>,
    holder: Option<String>,
    state: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/cheques?drawer=&holder=&state=&after=&limit=`.
pub async fn cheques(
    State(s): State<Arc<ApiState>>,
    q: Result<Query<ChequesParams>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(st) = &q.state
        && !CHEQUE_STATES.contains(&st.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "state must be one of {}",
            CHEQUE_STATES.join(", ")
        )));
    }
    if let Some(a) = &q.after {
        parse_id(a, "after")?;
    }
    let query = ChequeQuery {
        drawer: q.drawer.as_deref().map(parse_account).transpose()?,
        holder: q.holder.as_deref().map(parse_account).transpose()?,
        state: q.state,
        after: q.after,
        limit: page_limit(&s, q.limit)?,
    };
    let page = index_of(&s)?.cheques(&query).map_err(index_error)?;
    Ok(Json(page).into_response())
}
