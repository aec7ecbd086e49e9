//! The HTTP API (JSON under `/v1`, typed errors `{"error":{"code","message"}}`) and `/metrics`.
//! Every route is described in docs/api.md.

use crate::{
    chain::{Chain, SubmitError, Submitted},
    engine::MarshalMailbox,
    gossip::Gossip,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use commonware_consensus::types::Height;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use verity_types::{
    AccountId, AssetCode, Block, SignedTransaction, TxBody, hash::parse_hash, tx::TxDecodeError,
};

/// The runtime context the API runs in.
pub type Ctx = commonware_runtime::tokio::Context;

/// What the API serves from.
pub struct ApiState {
    /// The chain.
    pub chain: Arc<Chain<Ctx>>,
    /// Finalized blocks.
    pub marshal: MarshalMailbox,
    /// Forwards accepted transactions to the other validators.
    pub gossip: Gossip,
    /// Renders the runtime's Prometheus metrics.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// This node's name.
    pub name: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest page.
    pub max_page: usize,
}

/// A typed API error.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Builds the router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/txs", post(submit))
        .route("/v1/txs/{id}", get(tx))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/accounts/{id}/history", get(history))
        .route("/v1/assets/{code}", get(asset))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .with_state(state)
}

async fn metrics(State(s): State<Arc<ApiState>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        (s.metrics)(),
    )
        .into_response()
}

async fn status(State(s): State<Arc<ApiState>>) -> ApiResult {
    let tip = s.chain.tip();
    let validators: Vec<String> = s.chain.validators.iter().map(|v| v.to_string()).collect();
    let pool = s.chain.pool.lock().expect("pool lock").len();
    Ok(Json(json!({
        "node": s.name,
        "version": env!("CARGO_PKG_VERSION"),
        "chain_id": tip_hex(&s.chain.chain_id),
        "chain_name": s.chain.genesis.chain_name,
        "height": tip.height,
        "hash": tip_hex(&tip.hash),
        "state_root": tip_hex(&tip.state_root),
        "timestamp_ms": tip.timestamp_ms,
        "validators": validators,
        "pool_size": pool,
    }))
    .into_response())
}

fn tip_hex(h: &verity_types::Hash) -> String {
    hex::encode(h.0)
}

/// The JSON form of a block.
pub fn block_json(b: &Block) -> Value {
    let h = &b.header;
    json!({
        "height": h.height,
        "hash": tip_hex(&b.hash()),
        "header": {
            "parent": tip_hex(&h.parent),
            "height": h.height,
            "timestamp_ms": h.timestamp_ms,
            "proposer": hex::encode(h.proposer),
            "txs_root": tip_hex(&h.txs_root),
            "readings_root": tip_hex(&h.readings_root),
            "receipts_root": tip_hex(&h.receipts_root),
            "state_root": tip_hex(&h.state_root),
        },
        "transactions": b.txs.iter().map(tx_json).collect::<Vec<_>>(),
    })
}

/// The JSON form of a transaction.
pub fn tx_json(t: &SignedTransaction) -> Value {
    let mut v = json!({
        "id": tip_hex(&t.id()),
        "account": t.tx.account().to_string(),
        "signer": {"alg": t.tx.signer.algorithm().name(), "public_key": hex::encode(t.tx.signer.as_bytes())},
        "nonce": t.tx.nonce.0,
        "kind": t.tx.body.kind(),
    });
    let body = match &t.tx.body {
        TxBody::Transfer {
            to,
            asset,
            amount,
            memo,
        }
        | TxBody::Mint {
            to,
            asset,
            amount,
            memo,
        } => {
            json!({"to": to.to_string(), "asset": asset.to_string(), "amount": amount.0.to_string(), "memo": memo.as_str()})
        }
        TxBody::Burn {
            asset,
            amount,
            memo,
        } => {
            json!({"asset": asset.to_string(), "amount": amount.0.to_string(), "memo": memo.as_str()})
        }
        _ => json!({}),
    };
    if let (Value::Object(m), Value::Object(b)) = (&mut v, body) {
        m.extend(b);
    }
    v
}

async fn finalized_block(s: &ApiState, height: u64) -> Result<Block, ApiError> {
    if height > s.chain.tip().height {
        return Err(ApiError::not_found(format!(
            "no finalized block at height {height}"
        )));
    }
    match s.marshal.get_block(Height::new(height)).await {
        Some(b) => Ok(b.inner().clone()),
        None => Err(ApiError::not_found(format!(
            "block {height} is not stored on this node"
        ))),
    }
}

async fn block(State(s): State<Arc<ApiState>>, Path(height): Path<String>) -> ApiResult {
    let height = if height == "latest" {
        s.chain.tip().height
    } else {
        height.parse::<u64>().map_err(|_| {
            ApiError::bad_request("height must be a non-negative integer or `latest`")
        })?
    };
    let b = finalized_block(&s, height).await?;
    Ok(Json(block_json(&b)).into_response())
}

async fn submit(State(s): State<Arc<ApiState>>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "tx_too_large",
                format!("request body over {} bytes", s.max_body_bytes),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let tx = SignedTransaction::decode_submitted(&body).map_err(|e| {
        let status = match e {
            TxDecodeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let err = SubmitError::from(e);
        ApiError::new(status, err.code(), err.to_string())
    })?;
    let id = tip_hex(&tx.id());
    match s.chain.submit(&tx).await {
        Ok(Submitted::Pending) => {
            s.gossip.forward(tx);
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"id": id, "status": "pending"})),
            )
                .into_response())
        }
        Ok(Submitted::Committed(height)) => {
            Ok(Json(json!({"id": id, "status": "committed", "height": height})).into_response())
        }
        Err(e) => {
            let status = match &e {
                SubmitError::Pool(crate::pool::PoolError::NonceTaken(_)) => StatusCode::CONFLICT,
                SubmitError::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
                SubmitError::Ledger(verity_ledger::TxError::State(_)) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Err(ApiError::new(status, e.code(), e.to_string()))
        }
    }
}

async fn tx(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let hash = parse_hash(&id)
        .ok_or_else(|| ApiError::bad_request("transaction id must be 64 hex characters"))?;
    let id = tip_hex(&hash);
    if let Some(index) = &s.chain.index {
        let loc = index
            .tx_location(&hash)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some((height, i)) = loc
            && height <= s.chain.tip().height
        {
            let b = finalized_block(&s, height).await?;
            let t = b
                .txs
                .get(i as usize)
                .ok_or_else(|| ApiError::internal("index points past the block"))?;
            return Ok(Json(json!({
                "id": id, "status": "committed", "height": height, "index": i,
                "block_hash": tip_hex(&b.hash()),
                "receipt": {"status": "applied"},
                "transaction": tx_json(t),
            }))
            .into_response());
        }
    }
    if s.chain.pending_tx(&hash) {
        return Ok(Json(json!({"id": id, "status": "pending"})).into_response());
    }
    if let Some((code, message)) = s.chain.refusal(&hash) {
        return Ok(
            Json(json!({"id": id, "status": "rejected", "code": code, "message": message}))
                .into_response(),
        );
    }
    Err(ApiError::not_found(format!(
        "transaction {id} is unknown to this node"
    )))
}

async fn account(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let account: AccountId = id
        .parse()
        .map_err(|e: verity_types::ids::IdError| ApiError::bad_request(e.to_string()))?;
    let record = s
        .chain
        .account(&account)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .unwrap_or_default();
    let mut balances = Vec::new();
    for (code, amount) in &record.balances {
        let decimals = s
            .chain
            .asset(code)
            .await
            .ok()
            .flatten()
            .map_or(0, |a| a.decimals);
        balances.push(json!({
            "asset": code.to_string(),
            "amount": amount.to_string(),
            "decimal": verity_types::Amount(*amount).to_decimal(decimals),
            "decimals": decimals,
        }));
    }
    Ok(Json(json!({
        "account": account.to_string(),
        "nonce": record.nonce,
        "organization": record.organization.map(|o| o.to_string()),
        "balances": balances,
        "height": s.chain.tip().height,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    order: Option<String>,
}

async fn history(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let account: AccountId = id
        .parse()
        .map_err(|e: verity_types::ids::IdError| ApiError::bad_request(e.to_string()))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > s.max_page {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={}",
            s.max_page
        )));
    }
    let descending = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::bad_request("order must be asc or desc")),
    };
    let index = s
        .chain
        .index
        .as_ref()
        .ok_or_else(|| ApiError::internal("no index"))?;
    let page = index
        .history(&account, q.cursor.as_deref(), limit, descending)
        .map_err(|e| match e {
            crate::index::IndexError::BadCursor(_) => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        })?;
    Ok(Json(page).into_response())
}

async fn asset(State(s): State<Arc<ApiState>>, Path(code): Path<String>) -> ApiResult {
    let code: AssetCode = code
        .parse()
        .map_err(|e: verity_types::ids::IdError| ApiError::bad_request(e.to_string()))?;
    let a = s
        .chain
        .asset(&code)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("asset {code} does not exist")))?;
    Ok(Json(json!({
        "code": a.code.to_string(), "decimals": a.decimals, "issuer": a.issuer.to_string(),
        "name": a.name, "supply": a.supply.to_string(),
    }))
    .into_response())
}
