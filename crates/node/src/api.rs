//! The HTTP API (JSON under `/v1`, typed errors `{"error":{"code","message"}}`) and `/metrics`.
//! Every route is described in docs/api.md.

use crate::{
    chain::{Chain, SubmitError, Submitted},
    engine::MarshalMailbox,
    gossip::Gossip,
    index::{StoredReading, device_json},
    ingest::Ingest,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use commonware_consensus::types::Height;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use verity_types::{
    AccountId, AssetCode, Block, DeviceId, Hash, Reading, ReadingError, RejectCode,
    SignedTransaction, TxBody,
    hash::{hash_hex, parse_hash},
    proof::{MAX_PROOF_HEADERS, MerklePath, PROOF_VERSION, ReadingProof, encode_finalization},
    tx::TxDecodeError,
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
    /// Checks and pools readings.
    pub ingest: Ingest,
    /// Checks the signatures of submitted transactions in batches.
    pub txs: crate::tx_sigs::TxIngest,
    /// Renders the runtime's Prometheus metrics.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// This node's name.
    pub name: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest page.
    pub max_page: usize,
    /// The Merkle trees of the finalized blocks proved most recently.
    pub proof_trees: ProofTrees,
}

/// How many finalized blocks' Merkle trees the API keeps for proofs (most recently used first).
/// Building a block's trees reads the receipt of each of its transactions and readings; proofs
/// of readings committed together then cost a lookup each.
pub const PROOF_TREE_BLOCKS: usize = 16;

/// A finalized block's Merkle trees.
pub struct BlockTrees {
    /// The block's header.
    pub header: verity_types::Header,
    /// Over its transaction ids.
    pub txs: verity_types::merkle::Tree,
    /// Over its reading ids.
    pub readings: verity_types::merkle::Tree,
    /// Over its receipts (transactions first, then readings).
    pub receipts: verity_types::merkle::Tree,
}

/// The Merkle trees of recently proved finalized blocks (see [PROOF_TREE_BLOCKS]).
#[derive(Default)]
pub struct ProofTrees(std::sync::Mutex<std::collections::VecDeque<(u64, Arc<BlockTrees>)>>);

impl ProofTrees {
    fn get(&self, height: u64) -> Option<Arc<BlockTrees>> {
        let mut recent = self.0.lock().expect("proof trees lock");
        let at = recent.iter().position(|(h, _)| *h == height)?;
        let hit = recent.remove(at)?;
        recent.push_front(hit.clone());
        Some(hit.1)
    }

    fn put(&self, height: u64, trees: Arc<BlockTrees>) {
        let mut recent = self.0.lock().expect("proof trees lock");
        recent.retain(|(h, _)| *h != height);
        recent.push_front((height, trees));
        recent.truncate(PROOF_TREE_BLOCKS);
    }
}

/// The Merkle trees of the finalized block at `height` (built from the block and the index once,
/// then kept; finalized blocks never change).
pub(crate) async fn block_trees(s: &ApiState, height: u64) -> Result<Arc<BlockTrees>, ApiError> {
    if let Some(t) = s.proof_trees.get(height) {
        return Ok(t);
    }
    trees_of(s, &finalized_block(s, height).await?)
}

/// The Merkle trees of a finalized block already loaded (kept like [block_trees]'s).
pub(crate) fn trees_of(s: &ApiState, block: &Block) -> Result<Arc<BlockTrees>, ApiError> {
    let height = block.header.height;
    if let Some(t) = s.proof_trees.get(height) {
        return Ok(t);
    }
    let tx_ids: Vec<Hash> = block.txs.iter().map(|t| t.id()).collect();
    let reading_ids: Vec<Hash> = block.readings.iter().map(|r| r.id()).collect();
    let receipts = verity_types::merkle::Tree::new(&block_receipt_leaves(s, block)?);
    if receipts.root() != block.header.receipts_root {
        return Err(ApiError::internal("receipts do not match the block header"));
    }
    let trees = Arc::new(BlockTrees {
        header: block.header.clone(),
        txs: verity_types::merkle::Tree::new(&tx_ids),
        readings: verity_types::merkle::Tree::new(&reading_ids),
        receipts,
    });
    s.proof_trees.put(height, trees.clone());
    Ok(trees)
}

/// A typed API error.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// How long an API client may take (`[api]` in docs/configuration.md).
#[derive(Clone, Copy, Debug)]
pub struct HttpTimeouts {
    /// Longest to receive a request's headers, and longest a connection may sit idle.
    pub header: std::time::Duration,
    /// Longest from a request's headers to its answer, reading its body included.
    pub request: std::time::Duration,
}

/// Serves `router` on `listener` over HTTP/1.1, each connection on a task of its own, so that
/// a slow client holds only its own connection. A client that does not send a request's headers
/// within `timeouts.header` (or sits idle that long between requests) is disconnected; a request
/// that is not answered within `timeouts.request` (a body trickling in, say) gets
/// `408 request_timeout` and its connection is closed.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, timeouts: HttpTimeouts) {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::conn::auto,
        service::TowerToHyperService,
    };
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            request_deadline(timeouts.request, req, next)
        },
    ));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, for example: wait rather than spin.
                tracing::warn!(error = %e, "cannot accept an API connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            // HTTP/1 only: the automatic HTTP/2 detection would wait for a client's first bytes
            // with no deadline.
            let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.header);
            // A client that breaks its connection or runs out of time ends only this task.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers `408 request_timeout`, closing the connection, when `next` takes longer than `limit`.
async fn request_deadline(
    limit: std::time::Duration,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request was not complete within {} ms",
                    limit.as_millis()
                ),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

/// `413` for a body over `api.max_body_bytes`: `malformed` for a reading (PROTOCOL.md §3 calls
/// a reading over the limits malformed), `batch_too_large` for a batch of transactions,
/// `tx_too_large` for anything else.
fn body_too_large(path: &str, max_body_bytes: usize) -> ApiError {
    let code = match path {
        "/v1/readings" => "malformed",
        "/v1/txs/batch" => "batch_too_large",
        _ => "tx_too_large",
    };
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        code,
        format!("request body over {max_body_bytes} bytes"),
    )
}

/// A request body as read, or why it could not be: over `api.max_body_bytes` (see
/// [body_too_large]) or broken off.
fn body_of(
    s: &ApiState,
    path: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            body_too_large(path, s.max_body_bytes)
        } else {
            ApiError::bad_request(e.body_text())
        }
    })
}

/// Refuses at once a request whose `Content-Length` is over `api.max_body_bytes`, instead of
/// waiting (until `api.request_timeout_ms`) for a body that would be refused anyway; closes the
/// connection after any `413`.
async fn refuse_declared_oversize(
    State(s): State<Arc<ApiState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut resp = if declared.is_some_and(|n| n > s.max_body_bytes as u64) {
        body_too_large(req.uri().path(), s.max_body_bytes).into_response()
    } else {
        next.run(req).await
    };
    // The rest of a refused body is not read, so the connection cannot carry another request:
    // say so, or a client that reuses it sees its next request fail.
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// Builds the router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/txs", post(submit))
        .route("/v1/txs/batch", post(submit_batch))
        .route("/v1/txs/{id}", get(tx))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/accounts/{id}/history", get(crate::api_money::history))
        .route(
            "/v1/accounts/{id}/proposals/{proposal}",
            get(crate::api_money::proposal),
        )
        .route("/v1/txs/{id}/proof", get(crate::api_money::tx_proof))
        .route("/v1/tiers/{id}", get(crate::api_money::tier))
        .route("/v1/cheques", get(crate::api_money::cheques))
        .route("/v1/cheques/{id}", get(crate::api_money::cheque))
        .route("/v1/assets/{code}", get(asset))
        .route("/v1/readings", post(submit_reading))
        .route("/v1/readings/{id}", get(reading))
        .route("/v1/readings/{id}/proof", get(reading_proof))
        .route("/v1/devices", get(devices))
        .route("/v1/devices/{id}", get(device))
        .route("/v1/devices/{id}/history", get(device_history))
        .route("/v1/devices/{id}/readings", get(device_readings))
        .route("/v1/devices/{id}/latest", get(device_latest))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
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
        "chain_id": hash_hex(&s.chain.chain_id),
        "chain_name": s.chain.genesis.chain_name,
        "height": tip.height,
        "hash": hash_hex(&tip.hash),
        "state_root": hash_hex(&tip.state_root),
        "timestamp_ms": tip.timestamp_ms,
        "validators": validators,
        "pool_size": pool,
    }))
    .into_response())
}

/// The JSON form of a block.
pub fn block_json(b: &Block) -> Value {
    let h = &b.header;
    json!({
        "height": h.height,
        "hash": hash_hex(&b.hash()),
        "header": {
            "parent": hash_hex(&h.parent),
            "height": h.height,
            "timestamp_ms": h.timestamp_ms,
            "proposer": hex::encode(h.proposer),
            "txs_root": hash_hex(&h.txs_root),
            "readings_root": hash_hex(&h.readings_root),
            "receipts_root": hash_hex(&h.receipts_root),
            "state_root": hash_hex(&h.state_root),
        },
        "transactions": b.txs.iter().map(tx_json).collect::<Vec<_>>(),
        "readings": b.readings.iter().map(|r| hash_hex(&r.id())).collect::<Vec<_>>(),
    })
}

/// The JSON form of a transaction.
pub fn tx_json(t: &SignedTransaction) -> Value {
    let mut v = json!({
        "id": hash_hex(&t.id()),
        "account": t.tx.account().to_string(),
        "signer": {"alg": t.tx.signer.algorithm().name(), "public_key": hex::encode(t.tx.signer.as_bytes())},
        "nonce": t.tx.nonce.0,
    });
    if let (Value::Object(m), Value::Object(b)) = (&mut v, body_json(&t.tx.body)) {
        m.extend(b);
    }
    v
}

/// The JSON form of a transaction body: its `kind` and its fields.
pub fn body_json(body: &TxBody) -> Value {
    let amount = |a: &verity_types::Amount| a.0.to_string();
    let mut v = match body {
        TxBody::Transfer {
            to,
            asset,
            amount: a,
            memo,
        }
        | TxBody::Mint {
            to,
            asset,
            amount: a,
            memo,
        } => {
            json!({"to": to.to_string(), "asset": asset.to_string(), "amount": amount(a), "memo": memo.as_str()})
        }
        TxBody::Burn {
            asset,
            amount: a,
            memo,
        } => {
            json!({"asset": asset.to_string(), "amount": amount(a), "memo": memo.as_str()})
        }
        TxBody::DeviceRegister { device, key, meta } => json!({
            "device_id": device.as_str(), "alg": key.algorithm().name(),
            "public_key": hex::encode(key.as_bytes()), "meta": meta.entries(),
        }),
        TxBody::DeviceSetStatus { device, status } => {
            json!({"device_id": device.as_str(), "status": status.name()})
        }
        TxBody::DeviceRotateKey { device, key } => json!({
            "device_id": device.as_str(), "alg": key.algorithm().name(),
            "public_key": hex::encode(key.as_bytes()),
        }),
        TxBody::DeviceTransfer { device, to } => {
            json!({"device_id": device.as_str(), "to": to.to_string()})
        }
        TxBody::SetTier { account, tier } => {
            json!({"target": account.to_string(), "tier": tier.as_str()})
        }
        TxBody::SetFrozen {
            account,
            frozen,
            reason,
        } => json!({"target": account.to_string(), "frozen": frozen, "reason": reason.as_str()}),
        TxBody::MultisigCreate { members, threshold } => json!({
            "members": members.0.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            "threshold": threshold,
        }),
        TxBody::MultisigPropose { account, body } => {
            json!({"multisig": account.to_string(), "operation": body_json(&body.0)})
        }
        TxBody::MultisigApprove { account, proposal }
        | TxBody::MultisigCancel { account, proposal } => {
            json!({"multisig": account.to_string(), "proposal": hash_hex(proposal)})
        }
        TxBody::ChequeIssue {
            payee,
            asset,
            amount: a,
            valid_from_ms,
            expires_ms,
            memo,
        } => json!({
            "payee": payee.to_string(), "asset": asset.to_string(), "amount": amount(a),
            "valid_from_ms": valid_from_ms, "expires_ms": expires_ms, "memo": memo.as_str(),
        }),
        TxBody::ChequeEndorse { cheque, to } | TxBody::ChequePledge { cheque, to } => {
            json!({"cheque": hash_hex(cheque), "to": to.to_string()})
        }
        TxBody::ChequePresent { cheque }
        | TxBody::ChequeCancel { cheque }
        | TxBody::ChequeRelease { cheque } => json!({"cheque": hash_hex(cheque)}),
        TxBody::ChequeStop { cheque, reason } => {
            json!({"cheque": hash_hex(cheque), "reason": reason.as_str()})
        }
        TxBody::PaperPresent {
            image_sha256,
            number,
            drawer,
            payee,
            asset,
            amount: a,
        } => json!({
            "image_sha256": hash_hex(image_sha256), "number": number.as_str(),
            "drawer": drawer.to_string(), "payee": payee.to_string(),
            "asset": asset.to_string(), "amount": amount(a),
        }),
        TxBody::PaperDecide {
            cheque,
            honour,
            reason,
        } => json!({"cheque": hash_hex(cheque), "honour": honour, "reason": reason.as_str()}),
        _ => json!({}),
    };
    v["kind"] = body.kind().into();
    v
}

pub(crate) async fn finalized_block(s: &ApiState, height: u64) -> Result<Block, ApiError> {
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
    let body = body_of(&s, "/v1/txs", body)?;
    let tx = SignedTransaction::decode_submitted(&body).map_err(|e| {
        let status = match e {
            TxDecodeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let err = SubmitError::from(e);
        ApiError::new(status, err.code(), err.to_string())
    })?;
    let id = hash_hex(&tx.id());
    s.txs.check(&tx).await;
    match s.chain.submit(&tx).await {
        Ok(submitted @ Submitted::Pending) => {
            s.gossip.forward(tx);
            Ok((StatusCode::ACCEPTED, Json(submitted_json(id, &submitted))).into_response())
        }
        Ok(submitted @ Submitted::Committed(_)) => {
            Ok(Json(submitted_json(id, &submitted)).into_response())
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

/// The answer to an accepted submission, alone or in a batch.
fn submitted_json(id: String, submitted: &Submitted) -> Value {
    match submitted {
        Submitted::Pending => json!({"id": id, "status": "pending"}),
        Submitted::Committed(height) => {
            json!({"id": id, "status": "committed", "height": height})
        }
    }
}

/// `POST /v1/txs/batch`: transactions framed as [verity_types::tx::encode_batch] frames them,
/// refused whole if the body does not split into well-formed transactions; otherwise each is
/// checked and pooled as `POST /v1/txs` would, in order, their signatures verified together
/// first. Answers one result per transaction. Once the body is split, every transaction of it
/// is processed even if the client goes away or the request times out, so that what a batch
/// did never depends on where it was cut off.
async fn submit_batch(
    State(s): State<Arc<ApiState>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    use verity_types::tx::BatchDecodeError;
    let body = body_of(&s, "/v1/txs/batch", body)?;
    let txs = verity_types::tx::decode_batch(&body).map_err(|e| {
        let (status, code) = match &e {
            BatchDecodeError::TooMany => (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
            BatchDecodeError::Tx {
                error: TxDecodeError::TooLarge(_),
                ..
            } => (StatusCode::PAYLOAD_TOO_LARGE, "tx_too_large"),
            _ => (StatusCode::BAD_REQUEST, "malformed"),
        };
        ApiError::new(status, code, e.to_string())
    })?;
    let work = tokio::spawn(async move {
        s.txs.check_many(&txs).await;
        let mut results = Vec::with_capacity(txs.len());
        for tx in txs {
            let id = hash_hex(&tx.id());
            results.push(match s.chain.submit(&tx).await {
                Ok(submitted) => {
                    if submitted == Submitted::Pending {
                        s.gossip.forward(tx);
                    }
                    submitted_json(id, &submitted)
                }
                Err(e) => json!({
                    "id": id, "status": "refused", "code": e.code(), "message": e.to_string(),
                }),
            });
        }
        results
    });
    let results = work
        .await
        .map_err(|e| ApiError::internal(format!("the batch's task failed: {e}")))?;
    Ok(Json(json!({ "results": results })).into_response())
}

async fn tx(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let hash = parse_hash(&id)
        .ok_or_else(|| ApiError::bad_request("transaction id must be 64 hex characters"))?;
    let id = hash_hex(&hash);
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
            let receipt = index
                .tx_receipt(&hash)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok(Json(json!({
                "id": id, "status": "committed", "height": height, "index": i,
                "block_hash": hash_hex(&b.hash()),
                "timestamp_ms": b.header.timestamp_ms,
                "receipt": receipt,
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
    let tier_id = match &record.tier {
        Some(t) => Some(t.to_string()),
        None => s
            .chain
            .record::<verity_ledger::state::Settings>(&verity_ledger::state::settings_key())
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .and_then(|st| st.default_tier.map(|t| t.to_string())),
    };
    let today = s.chain.tip().timestamp_ms / verity_ledger::accounts::DAY_MS;
    let spent_today: serde_json::Map<String, Value> = record
        .spent
        .iter()
        .filter(|_| record.spent_day == today)
        .map(|(c, a)| (c.to_string(), a.to_string().into()))
        .collect();
    Ok(Json(json!({
        "account": account.to_string(),
        "nonce": record.nonce,
        "organization": record.organization.map(|o| o.to_string()),
        "tier": tier_id,
        "frozen": record.frozen.is_some(),
        "frozen_reason": record.frozen,
        "spent_today": spent_today,
        "multisig": record.multisig.map(|m| json!({
            "members": m.members.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "threshold": m.threshold,
            "pending_proposals": m.pending,
        })),
        "balances": balances,
        "height": s.chain.tip().height,
    }))
    .into_response())
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

/// The HTTP status of a refused reading.
pub fn reading_status(code: RejectCode) -> StatusCode {
    match code {
        RejectCode::Malformed | RejectCode::BadHeader | RejectCode::BadSenml => {
            StatusCode::BAD_REQUEST
        }
        RejectCode::Replay => StatusCode::CONFLICT,
        RejectCode::PoolFull => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<ReadingError> for ApiError {
    fn from(e: ReadingError) -> Self {
        ApiError::new(reading_status(e.code), e.code.code(), e.detail)
    }
}

async fn submit_reading(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/cose") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the raw reading with Content-Type: application/cose",
        ));
    }
    let body = body_of(&s, "/v1/readings", body)?;
    let reading = s
        .ingest
        .submit(body.to_vec(), None)
        .await
        .map_err(|r| ApiError::from(r.error))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"reading_id": hash_hex(&reading.id()), "status": "accepted"})),
    )
        .into_response())
}

fn parse_reading_id(id: &str) -> Result<Hash, ApiError> {
    parse_hash(id).ok_or_else(|| ApiError::bad_request("reading id must be 64 hex characters"))
}

/// The JSON form of a reading with its status.
pub fn reading_json(r: &Reading, status: &str) -> Value {
    json!({
        "reading_id": hash_hex(&r.id()),
        "device_id": r.device().as_str(),
        "seq": r.seq(),
        "alg": r.algorithm().name(),
        "status": status,
        "records": r.records().iter().map(|x| x.to_json()).collect::<Vec<_>>(),
    })
}

fn stored_json(stored: &StoredReading) -> Result<Value, ApiError> {
    let r = Reading::decode(&stored.bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut v = match stored.rejected {
        None => reading_json(&r, "committed"),
        Some(code) => {
            let mut v = reading_json(&r, "rejected");
            v["code"] = code.code().into();
            v
        }
    };
    v["height"] = stored.height.into();
    v["index"] = stored.index.into();
    Ok(v)
}

pub(crate) fn index_of(s: &ApiState) -> Result<&crate::index::Index, ApiError> {
    s.chain
        .index
        .as_ref()
        .ok_or_else(|| ApiError::internal("no index"))
}

fn committed_reading(s: &ApiState, id: &Hash) -> Result<Option<StoredReading>, ApiError> {
    let stored = index_of(s)?
        .reading(id)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(stored.filter(|r| r.height <= s.chain.tip().height))
}

async fn reading(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let hash = parse_reading_id(&id)?;
    if let Some(stored) = committed_reading(&s, &hash)? {
        return Ok(Json(stored_json(&stored)?).into_response());
    }
    match s.chain.pending_reading(&hash) {
        Some(Ok(r)) => Ok(Json(reading_json(&r, "accepted")).into_response()),
        Some(Err(code)) => Ok(Json(json!({
            "reading_id": hash_hex(&hash), "status": "rejected", "code": code.code(),
        }))
        .into_response()),
        None => Err(ApiError::not_found(format!(
            "reading {} is unknown to this node",
            hash_hex(&hash)
        ))),
    }
}

/// Builds the inclusion proof of a committed reading.
pub async fn build_reading_proof(s: &ApiState, hash: &Hash) -> Result<ReadingProof, ApiError> {
    let conflict = |m: &str| ApiError::new(StatusCode::CONFLICT, "not_committed", m);
    let Some(stored) = committed_reading(s, hash)? else {
        return match s.chain.pending_reading(hash) {
            Some(_) => Err(conflict("the reading is not committed (yet)")),
            None => Err(ApiError::not_found(format!(
                "reading {} is unknown to this node",
                hash_hex(hash)
            ))),
        };
    };
    if stored.rejected.is_some() {
        return Err(conflict("the reading was rejected by block execution"));
    }
    let trees = block_trees(s, stored.height).await?;
    let readings_path = MerklePath::in_tree(&trees.readings, stored.index)
        .ok_or_else(|| ApiError::internal("reading index out of range"))?;
    let tx_count = trees.txs.leaf_count();
    let receipt_path = MerklePath::in_tree(&trees.receipts, tx_count + stored.index)
        .ok_or_else(|| ApiError::internal("receipt index out of range"))?;
    let (headers, finalization) = certified_headers(s, &trees.header).await?;
    use base64::Engine as _;
    Ok(ReadingProof {
        version: PROOF_VERSION,
        kind: "reading".into(),
        chain_id: hash_hex(&s.chain.chain_id),
        reading_id: hash_hex(hash),
        reading: base64::engine::general_purpose::STANDARD.encode(&stored.bytes),
        height: stored.height,
        readings_path,
        receipt_path,
        headers,
        finalization,
    })
}

/// The leaves of a finalized block's receipts tree, rebuilt from the index.
fn block_receipt_leaves(s: &ApiState, block: &Block) -> Result<Vec<Hash>, ApiError> {
    let index = index_of(s)?;
    let mut leaves = Vec::with_capacity(block.txs.len() + block.readings.len());
    for (i, t) in block.txs.iter().enumerate() {
        let receipt = index
            .tx_receipt(&t.id())
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(|| ApiError::internal("a committed transaction has no receipt"))?;
        leaves.push(verity_types::receipt::receipt_leaf(
            &t.id(),
            i as u32,
            &receipt.outcome,
            &receipt.movements,
        ));
    }
    for (i, r) in block.readings.iter().enumerate() {
        let rejected = index
            .reading(&r.id())
            .map_err(|e| ApiError::internal(e.to_string()))?
            .and_then(|x| x.rejected);
        leaves.push(
            verity_ledger::ReadingReceipt {
                reading_id: r.id(),
                index: i as u32,
                rejected,
            }
            .leaf(),
        );
    }
    Ok(leaves)
}

/// The headers from `header`'s block to the first descendant with a stored finalization
/// certificate, encoded for a proof, and that certificate.
pub(crate) async fn certified_headers(
    s: &ApiState,
    header: &verity_types::Header,
) -> Result<(Vec<String>, String), ApiError> {
    let conflict = |m: &str| ApiError::new(StatusCode::CONFLICT, "not_committed", m);
    let tip = s.chain.tip().height;
    let mut headers = vec![header.clone()];
    let mut height = header.height;
    let finalization = loop {
        if let Some(f) = s.marshal.get_finalization(Height::new(height)).await {
            break f;
        }
        height += 1;
        if height > tip || headers.len() >= MAX_PROOF_HEADERS {
            return Err(conflict(
                "no finalization certificate is stored yet for this block or its descendants",
            ));
        }
        headers.push(finalized_block(s, height).await?.header);
    };
    let encode = |h: &verity_types::Header| {
        let mut buf = Vec::new();
        commonware_codec::Write::write(h, &mut buf);
        hex::encode(buf)
    };
    Ok((
        headers.iter().map(encode).collect(),
        encode_finalization(&finalization),
    ))
}

async fn reading_proof(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let hash = parse_reading_id(&id)?;
    let proof = build_reading_proof(&s, &hash).await?;
    Ok(Json(proof).into_response())
}

fn parse_device(id: &str) -> Result<DeviceId, ApiError> {
    id.parse()
        .map_err(|e: verity_types::device::DeviceError| ApiError::bad_request(e.to_string()))
}

#[derive(Deserialize)]
struct DevicesQuery {
    owner: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

pub(crate) fn page_limit(s: &ApiState, limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > s.max_page {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={}",
            s.max_page
        )));
    }
    Ok(limit)
}

async fn devices(
    State(s): State<Arc<ApiState>>,
    q: Result<Query<DevicesQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = page_limit(&s, q.limit)?;
    let owner = q
        .owner
        .as_deref()
        .map(|o| o.parse::<AccountId>())
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let list = index_of(&s)?
        .devices(owner.as_ref(), q.after.as_deref(), limit)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let next = (list.len() == limit)
        .then(|| list.last().map(|d| d["device_id"].clone()))
        .flatten();
    Ok(Json(json!({"devices": list, "next_after": next})).into_response())
}

async fn device(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_device(&id)?;
    let record = s
        .chain
        .device(&id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no device {id} is registered")))?;
    let mut v = device_json(&record);
    v["history"] = index_of(&s)?
        .device_events(&id, s.max_page)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .into();
    Ok(Json(v).into_response())
}

async fn device_history(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_device(&id)?;
    let events = index_of(&s)?
        .device_events(&id, s.max_page)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if events.is_empty() {
        return Err(ApiError::not_found(format!("no device {id} is registered")));
    }
    Ok(Json(json!({"device_id": id.as_str(), "history": events})).into_response())
}

#[derive(Deserialize)]
struct ReadingsQuery {
    from: Option<u64>,
    to: Option<u64>,
    limit: Option<usize>,
    cursor: Option<String>,
    order: Option<String>,
}

async fn device_readings(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    q: Result<Query<ReadingsQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = parse_device(&id)?;
    let limit = page_limit(&s, q.limit)?;
    let descending = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::bad_request("order must be asc or desc")),
    };
    let from_ms = q.from.unwrap_or(0).saturating_mul(1000);
    let to_ms =
        q.to.map_or(u64::MAX, |t| t.saturating_mul(1000).saturating_add(999));
    if from_ms > to_ms {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    let page = index_of(&s)?
        .device_readings(&id, from_ms, to_ms, q.cursor.as_deref(), limit, descending)
        .map_err(|e| match e {
            crate::index::IndexError::BadCursor(_) => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        })?;
    let readings = page
        .readings
        .iter()
        .map(stored_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(
        json!({"device_id": id.as_str(), "readings": readings, "next_cursor": page.next_cursor}),
    )
    .into_response())
}

async fn device_latest(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_device(&id)?;
    let latest = index_of(&s)?
        .latest(&id)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({"device_id": id.as_str(), "latest": latest})).into_response())
}
