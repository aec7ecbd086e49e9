//! The Verity Rust SDK: a blocking client of a node's HTTP API, and helpers that build, sign,
//! submit and wait for transactions.

use serde_json::Value;
use std::time::{Duration, Instant};
use verity_types::{
    AccountId, Hash, Nonce, SecretKey, SignedTransaction, Transaction, TxBody, hash::parse_hash,
};

/// The node URL used when none is given.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8000";
/// How long a submitting call waits for finality by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached or answered garbage.
    #[error("cannot reach {url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The node answered with a typed error.
    #[error("{code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Human message.
        message: String,
    },
    /// The transaction was refused while building a block.
    #[error("{code}: {message}")]
    Rejected {
        /// Stable error code.
        code: String,
        /// Human message.
        message: String,
    },
    /// Waiting for finality ran out of time.
    #[error("transaction {0} was not final within the wait limit")]
    Timeout(String),
}

impl ClientError {
    /// The human part of the error, without the code.
    pub fn message(&self) -> String {
        match self {
            Self::Api { message, .. } | Self::Rejected { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The stable error code, for scripts.
    pub fn code(&self) -> &str {
        match self {
            Self::Transport { .. } => "unreachable",
            Self::Api { code, .. } | Self::Rejected { code, .. } => code,
            Self::Timeout(_) => "timeout",
        }
    }
}

/// A client of one node.
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    /// A client of the node at `base` (e.g. `http://127.0.0.1:8000`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client builds"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn answer(
        &self,
        url: &str,
        resp: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<Value, ClientError> {
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.to_string(),
            message: e.to_string(),
        };
        let resp = resp.map_err(transport)?;
        let status = resp.status();
        let text = resp.text().map_err(transport)?;
        let body: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) if !status.is_success() => {
                return Err(ClientError::Api {
                    status: status.as_u16(),
                    code: format!("http_{}", status.as_u16()),
                    message: text,
                });
            }
            Err(e) => {
                return Err(ClientError::Transport {
                    url: url.to_string(),
                    message: format!("invalid JSON: {e}"),
                });
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        let err = &body["error"];
        Err(ClientError::Api {
            status: status.as_u16(),
            code: err["code"].as_str().unwrap_or("unknown").to_string(),
            message: err["message"].as_str().unwrap_or("").to_string(),
        })
    }

    /// `GET path`, returning the JSON body.
    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = self.url(path);
        let resp = self.http.get(&url).send();
        self.answer(&url, resp)
    }

    /// The node's status.
    pub fn status(&self) -> Result<Value, ClientError> {
        self.get("/v1/status")
    }

    /// The network's chain id (what transaction signatures cover).
    pub fn chain_id(&self) -> Result<Hash, ClientError> {
        let status = self.status()?;
        status["chain_id"]
            .as_str()
            .and_then(parse_hash)
            .ok_or_else(|| ClientError::Transport {
                url: self.url("/v1/status"),
                message: "status has no chain_id".into(),
            })
    }

    /// An account's nonce and balances.
    pub fn account(&self, id: &AccountId) -> Result<Value, ClientError> {
        self.get(&format!("/v1/accounts/{id}"))
    }

    /// Submits a signed transaction; returns the node's answer (`status` pending or committed).
    pub fn submit(&self, tx: &SignedTransaction) -> Result<Value, ClientError> {
        let url = self.url("/v1/txs");
        let resp = self
            .http
            .post(&url)
            .header("content-type", "application/octet-stream")
            .body(tx.to_bytes())
            .send();
        self.answer(&url, resp)
    }

    /// Submits up to [verity_types::tx::MAX_BATCH_TXS] signed transactions in one request
    /// (`POST /v1/txs/batch`); returns the node's answer for each, in order (`status` pending,
    /// committed or refused, with `code` and `message` when refused). A batch the node cannot
    /// split into well-formed transactions is refused whole, as an error.
    pub fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<Vec<Value>, ClientError> {
        let url = self.url("/v1/txs/batch");
        let resp = self
            .http
            .post(&url)
            .header("content-type", "application/octet-stream")
            .body(verity_types::tx::encode_batch(txs))
            .send();
        let answer = self.answer(&url, resp)?;
        match answer["results"].as_array() {
            Some(results) if results.len() == txs.len() => Ok(results.clone()),
            _ => Err(ClientError::Transport {
                url,
                message: format!("expected {} results, got {answer}", txs.len()),
            }),
        }
    }

    /// Signs `body` with `key`, using the account's committed nonce unless `nonce` is given.
    pub fn sign(
        &self,
        key: &SecretKey,
        body: TxBody,
        nonce: Option<u64>,
    ) -> Result<SignedTransaction, ClientError> {
        let chain_id = self.chain_id()?;
        let nonce = match nonce {
            Some(n) => n,
            None => self.account(&key.public_key().account_id())?["nonce"]
                .as_u64()
                .unwrap_or(0),
        };
        let tx = Transaction {
            signer: key.public_key(),
            nonce: Nonce(nonce),
            body,
        };
        Ok(tx.sign(key, &chain_id))
    }

    /// Polls `path` until its `status` is `committed` (returns the record) or `rejected` (an
    /// error with its code), or `limit` passes. A 404 means not known yet.
    fn wait_committed(&self, path: &str, id: &Hash, limit: Duration) -> Result<Value, ClientError> {
        let deadline = Instant::now() + limit;
        let mut delay = Duration::from_millis(20);
        loop {
            match self.get(path) {
                Ok(v) if v["status"] == "committed" => return Ok(v),
                Ok(v) if v["status"] == "rejected" => {
                    return Err(ClientError::Rejected {
                        code: v["code"].as_str().unwrap_or("rejected").to_string(),
                        message: v["message"].as_str().unwrap_or("rejected").to_string(),
                    });
                }
                Ok(_) => {}
                Err(ClientError::Api { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(hex::encode(id.0)));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// Waits until transaction `id` is final and returns its record; fails if it is rejected
    /// or the wait exceeds `limit`.
    pub fn wait_final(&self, id: &Hash, limit: Duration) -> Result<Value, ClientError> {
        self.wait_committed(&format!("/v1/txs/{}", hex::encode(id.0)), id, limit)
    }

    /// Posts a signed reading (PROTOCOL.md §4); returns the node's answer (`reading_id`,
    /// `status` accepted) or the refusal with its PROTOCOL.md code.
    pub fn submit_reading(&self, bytes: &[u8]) -> Result<Value, ClientError> {
        let url = self.url("/v1/readings");
        let resp = self
            .http
            .post(&url)
            .header("content-type", "application/cose")
            .body(bytes.to_vec())
            .send();
        self.answer(&url, resp)
    }

    /// Waits until reading `id` is committed and returns its record; fails if it is rejected
    /// or the wait exceeds `limit`.
    pub fn wait_reading(&self, id: &Hash, limit: Duration) -> Result<Value, ClientError> {
        self.wait_committed(&format!("/v1/readings/{}", hex::encode(id.0)), id, limit)
    }
}
