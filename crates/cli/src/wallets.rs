//! `verity account …`, `verity multisig …` and `verity proof tx`: wallets with tiers and
//! freezes, their filtered history (JSON or CSV), multi-signature treasuries, and transaction
//! proofs.

use crate::{NodeArg, SubmitArgs, asset_amount, print, submit, submit_tx};
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::path::PathBuf;
use verity_client::Client;
use verity_types::{
    AccountId, Memo, TierId, TxBody,
    hash::parse_hash,
    tx::{InnerBody, Members, multisig_account_id},
};

/// A point in time: milliseconds since the Unix epoch, or RFC 3339 such as
/// `2026-11-26T08:00:00Z`.
pub fn parse_time_ms(s: &str) -> anyhow::Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| anyhow!("{s:?} is neither milliseconds nor an RFC 3339 time: {e}"))?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| anyhow!("{s:?} is before 1970"))?
        .as_millis();
    Ok(ms as u64)
}

/// Formats block time as RFC 3339 UTC.
pub fn format_time_ms(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Filters of `verity account history`.
#[derive(Args, Clone, Default)]
pub struct HistoryFilter {
    /// Only this asset.
    #[arg(long)]
    asset: Option<String>,
    /// Only `in` (credits) or `out` (debits).
    #[arg(long)]
    direction: Option<String>,
    /// Only movements with this other account.
    #[arg(long)]
    counterparty: Option<String>,
    /// Only this kind: transfer, mint, burn or cheque.
    #[arg(long)]
    kind: Option<String>,
    /// From this height on.
    #[arg(long)]
    from_height: Option<u64>,
    /// Up to this height.
    #[arg(long)]
    to_height: Option<u64>,
    /// From this block time on (ms since the epoch, or RFC 3339).
    #[arg(long)]
    from_time: Option<String>,
    /// Up to this block time (ms since the epoch, or RFC 3339).
    #[arg(long)]
    to_time: Option<String>,
}

impl HistoryFilter {
    fn query(&self) -> anyhow::Result<String> {
        let mut q = String::new();
        let mut add = |k: &str, v: String| q.push_str(&format!("&{k}={v}"));
        if let Some(a) = &self.asset {
            add("asset", a.parse::<verity_types::AssetCode>()?.to_string());
        }
        if let Some(d) = &self.direction {
            if d != "in" && d != "out" {
                bail!("--direction must be in or out");
            }
            add("direction", d.clone());
        }
        if let Some(c) = &self.counterparty {
            add("counterparty", c.parse::<AccountId>()?.to_string());
        }
        if let Some(k) = &self.kind {
            k.parse::<verity_types::receipt::MovementKind>()
                .map_err(|e| anyhow!(e))?;
            add("kind", k.clone());
        }
        if let Some(h) = self.from_height {
            add("from_height", h.to_string());
        }
        if let Some(h) = self.to_height {
            add("to_height", h.to_string());
        }
        if let Some(t) = &self.from_time {
            add("from_time", parse_time_ms(t)?.to_string());
        }
        if let Some(t) = &self.to_time {
            add("to_time", parse_time_ms(t)?.to_string());
        }
        Ok(q)
    }
}

/// `verity account …`.
#[derive(Subcommand)]
pub enum AccountCmd {
    /// Balances, nonce, tier, freeze and (for a treasury) its members.
    Show {
        /// Account id.
        account: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Movements of value: every transfer, mint, burn and cheque clearing that touched the
    /// account, with counterparty, memo, height, time, transaction and resulting balance.
    History {
        /// Account id.
        account: String,
        #[command(flatten)]
        filter: HistoryFilter,
        /// Entries per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// Follow cursors to the end instead of printing one page.
        #[arg(long)]
        all: bool,
        /// Newest first.
        #[arg(long)]
        desc: bool,
        /// Print CSV instead of JSON.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Put an account in a wallet tier (issuer or regulator accounts).
    SetTier {
        /// Account id.
        account: String,
        /// Tier id, e.g. verified.
        tier: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Freeze an account: it can neither pay nor be paid (regulator accounts).
    Freeze {
        /// Account id.
        account: String,
        /// Why (shown in refusals).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Unfreeze an account (regulator accounts).
    Unfreeze {
        /// Account id.
        account: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A wallet tier and its limits.
    Tier {
        /// Tier id.
        tier: String,
        #[command(flatten)]
        node: NodeArg,
    },
}

const CSV_HEADER: [&str; 12] = [
    "height",
    "time",
    "timestamp_ms",
    "tx_id",
    "kind",
    "asset",
    "direction",
    "delta",
    "counterparty",
    "balance_after",
    "memo",
    "seq",
];

fn csv_row(e: &Value) -> [String; 12] {
    let s = |k: &str| match &e[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let ts = e["timestamp_ms"].as_u64().unwrap_or(0);
    [
        s("height"),
        format_time_ms(ts),
        s("timestamp_ms"),
        s("tx_id"),
        s("kind"),
        s("asset"),
        s("direction"),
        s("delta"),
        s("counterparty"),
        s("balance_after"),
        s("memo"),
        s("seq"),
    ]
}

/// Runs `verity account …`.
pub fn run_account(cmd: AccountCmd) -> anyhow::Result<()> {
    match cmd {
        AccountCmd::Show { account, node } => {
            let id: AccountId = account.parse()?;
            print(&Client::new(&node.node).account(&id)?);
            Ok(())
        }
        AccountCmd::History {
            account,
            filter,
            limit,
            cursor,
            all,
            desc,
            csv,
            node,
        } => {
            let id: AccountId = account.parse()?;
            let client = Client::new(&node.node);
            let base = format!(
                "/v1/accounts/{id}/history?limit={limit}&order={}{}",
                if desc { "desc" } else { "asc" },
                filter.query()?
            );
            let mut writer = csv.then(|| csv::Writer::from_writer(std::io::stdout()));
            if let Some(w) = writer.as_mut() {
                w.write_record(CSV_HEADER)?;
            }
            let mut cursor = cursor;
            let mut entries = Vec::new();
            loop {
                let path = match &cursor {
                    Some(c) => format!("{base}&cursor={c}"),
                    None => base.clone(),
                };
                let page = client.get(&path)?;
                let page_entries = page["entries"].as_array().cloned().unwrap_or_default();
                match writer.as_mut() {
                    Some(w) => {
                        for e in &page_entries {
                            w.write_record(csv_row(e))?;
                        }
                        w.flush()?;
                    }
                    None if !all => {
                        print(&page);
                        return Ok(());
                    }
                    None => entries.extend(page_entries),
                }
                cursor = page["next_cursor"].as_str().map(str::to_string);
                if !all || cursor.is_none() {
                    if writer.is_some()
                        && !all
                        && let Some(c) = &cursor
                    {
                        eprintln!("more entries: --cursor {c} (or --all)");
                    }
                    break;
                }
            }
            if writer.is_none() {
                print(&serde_json::json!({"entries": entries, "next_cursor": null}));
            }
            Ok(())
        }
        AccountCmd::SetTier {
            account,
            tier,
            submit: args,
            node,
        } => {
            let tier: TierId = tier.parse()?;
            submit(
                &Client::new(&node.node),
                &args,
                TxBody::SetTier {
                    account: account.parse()?,
                    tier,
                },
            )
        }
        AccountCmd::Freeze {
            account,
            reason,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::SetFrozen {
                account: account.parse()?,
                frozen: true,
                reason: Memo::new(reason)?,
            },
        ),
        AccountCmd::Unfreeze {
            account,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::SetFrozen {
                account: account.parse()?,
                frozen: false,
                reason: Memo::default(),
            },
        ),
        AccountCmd::Tier { tier, node } => {
            let tier: TierId = tier.parse()?;
            print(&Client::new(&node.node).get(&format!("/v1/tiers/{tier}"))?);
            Ok(())
        }
    }
}

/// `verity multisig …`.
#[derive(Subcommand)]
pub enum MultisigCmd {
    /// Create an m-of-n treasury account; prints its account id. Created by an organization
    /// admin, it acts for that organization.
    Create {
        /// Approvals needed.
        #[arg(long)]
        threshold: u8,
        /// Member account ids (2 to 16).
        #[arg(required = true, num_args = 2..)]
        members: Vec<String>,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Propose a transfer from the treasury (your approval counts); prints the proposal id.
    Propose {
        /// The treasury account.
        #[arg(long)]
        multisig: String,
        /// Recipient account id.
        #[arg(long)]
        to: String,
        /// Asset code.
        #[arg(long)]
        asset: String,
        /// Amount as a decimal.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Approve a pending proposal; the approval that reaches the threshold executes it.
    Approve {
        /// The treasury account.
        #[arg(long)]
        multisig: String,
        /// The proposal id.
        proposal: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Withdraw your pending proposal.
    Cancel {
        /// The treasury account.
        #[arg(long)]
        multisig: String,
        /// The proposal id.
        proposal: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A pending proposal with its approvals.
    Show {
        /// The treasury account.
        #[arg(long)]
        multisig: String,
        /// The proposal id.
        proposal: String,
        #[command(flatten)]
        node: NodeArg,
    },
}

fn proposal_id(s: &str) -> anyhow::Result<verity_types::Hash> {
    parse_hash(s).ok_or_else(|| anyhow!("proposal id must be 64 hex characters"))
}

/// Runs `verity multisig …`.
pub fn run_multisig(cmd: MultisigCmd) -> anyhow::Result<()> {
    match cmd {
        MultisigCmd::Create {
            threshold,
            members,
            submit: args,
            node,
        } => {
            let members = members
                .iter()
                .map(|m| m.parse())
                .collect::<Result<Vec<AccountId>, _>>()?;
            let (id, _) = submit_tx(
                &Client::new(&node.node),
                &args,
                TxBody::MultisigCreate {
                    members: Members(members),
                    threshold,
                },
            )?;
            println!("multisig account {}", multisig_account_id(&id));
            Ok(())
        }
        MultisigCmd::Propose {
            multisig,
            to,
            asset,
            amount,
            submit: args,
            node,
        } => {
            let client = Client::new(&node.node);
            let (asset, amount) = asset_amount(&client, &asset, &amount)?;
            let body = TxBody::Transfer {
                to: to.parse()?,
                asset,
                amount,
                memo: Memo::new(args.memo.clone())?,
            };
            let account: AccountId = multisig.parse()?;
            let (id, done) = submit_tx(
                &client,
                &args,
                TxBody::MultisigPropose {
                    account,
                    body: InnerBody(Box::new(body)),
                },
            )?;
            let executed = done.is_some_and(|d| {
                d["receipt"]["movements"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty())
            });
            if executed {
                println!("executed at once (threshold 1); no proposal is pending");
            } else {
                println!("proposal {id}");
            }
            Ok(())
        }
        MultisigCmd::Approve {
            multisig,
            proposal,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::MultisigApprove {
                account: multisig.parse()?,
                proposal: proposal_id(&proposal)?,
            },
        ),
        MultisigCmd::Cancel {
            multisig,
            proposal,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::MultisigCancel {
                account: multisig.parse()?,
                proposal: proposal_id(&proposal)?,
            },
        ),
        MultisigCmd::Show {
            multisig,
            proposal,
            node,
        } => {
            let account: AccountId = multisig.parse()?;
            let id = proposal_id(&proposal)?;
            print(&Client::new(&node.node).get(&format!("/v1/accounts/{account}/proposals/{id}"))?);
            Ok(())
        }
    }
}

/// Runs `verity proof tx`: fetches a transaction's proof.
pub fn proof_tx(id: &str, out: Option<PathBuf>, node: &NodeArg) -> anyhow::Result<()> {
    let hash = parse_hash(id).ok_or_else(|| anyhow!("transaction id must be 64 hex characters"))?;
    let proof = Client::new(&node.node).get(&format!("/v1/txs/{hash}/proof"))?;
    crate::devices::write_json(&proof, out.as_deref())
}
