//! `verity cheque …`: digital cheques through their whole lifecycle, truncated paper cheques,
//! the regulator's lists, and the ISO 20022 export (camt.107, camt.108, camt.109).

use crate::{
    NodeArg, SubmitArgs, asset_amount, print, submit, submit_tx,
    wallets::{format_time_ms, parse_time_ms},
};
use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;
use verity_client::Client;
use verity_types::{
    AccountId, ChequeNumber, Hash, Memo, TxBody,
    hash::{parse_hash, sha256},
    tx::{cheque_id, paper_cheque_id},
};

/// `verity cheque …`.
#[derive(Subcommand)]
pub enum ChequeCmd {
    /// Draw a cheque on your account; prints its id.
    Issue {
        /// The payee (first holder).
        #[arg(long)]
        payee: String,
        /// Asset code.
        #[arg(long)]
        asset: String,
        /// Amount as a decimal.
        #[arg(long)]
        amount: String,
        /// Not payable before this time (ms since the epoch, or RFC 3339).
        #[arg(long)]
        valid_from: Option<String>,
        /// Not payable from this time on (ms since the epoch, or RFC 3339).
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Endorse a cheque you hold to another holder.
    Endorse {
        /// Cheque id.
        cheque: String,
        /// The new holder.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Present a cheque you hold (or hold in pledge): it clears or is dishonoured.
    Present {
        /// Cheque id.
        cheque: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Stop payment of a cheque you drew (before it is presented).
    Stop {
        /// Cheque id.
        cheque: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Cancel a cheque you drew that its first payee still holds.
    Cancel {
        /// Cheque id.
        cheque: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Pledge a cheque you hold to a lender as collateral.
    Pledge {
        /// Cheque id.
        cheque: String,
        /// The lender.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Release a cheque pledged to you.
    Release {
        /// Cheque id.
        cheque: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A cheque with its complete lifecycle.
    Show {
        /// Cheque id.
        cheque: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Cheques by drawer, holder or state.
    List {
        /// Drawn on this account.
        #[arg(long)]
        drawer: Option<String>,
        /// Held by this account.
        #[arg(long)]
        holder: Option<String>,
        /// In this state: issued, endorsed, pledged, stopped, presented, cleared, dishonoured
        /// or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Cheques per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Continue after this cheque id (the previous page's next_after).
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        node: NodeArg,
    },
    /// As a collecting bank, present a truncated paper cheque by its scanned image; prints
    /// its id.
    PaperPresent {
        /// The scanned image (its SHA-256 goes on the ledger, not the image).
        #[arg(long)]
        image: PathBuf,
        /// The number printed on the cheque.
        #[arg(long)]
        number: String,
        /// The account it is drawn on.
        #[arg(long)]
        drawer: String,
        /// The customer to credit.
        #[arg(long)]
        payee: String,
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
    /// As the paying bank, honour a presented paper cheque (it clears or is dishonoured).
    PaperHonour {
        /// Cheque id.
        cheque: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// As the paying bank, return a presented paper cheque with a reason.
    PaperReturn {
        /// Cheque id.
        cheque: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Export presentment, stop and cancellation events as ISO 20022 XML (camt.107 for
    /// presentments, camt.108 and camt.109 for stops and cancellations), one file per message.
    Export {
        /// Write ISO 20022 XML (the only format so far; required so scripts stay explicit).
        #[arg(long, required = true)]
        iso20022: bool,
        /// Folder to write the messages into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Cheques to export; with none, every cheque matching the filters.
        cheques: Vec<String>,
        /// Only cheques drawn on this account.
        #[arg(long)]
        drawer: Option<String>,
        /// Only cheques held by this account.
        #[arg(long)]
        holder: Option<String>,
        /// Name of the exporting organization (message sender).
        #[arg(long, default_value = "verity")]
        sender: String,
        #[command(flatten)]
        node: NodeArg,
    },
}

fn cheque_arg(s: &str) -> anyhow::Result<Hash> {
    parse_hash(s).ok_or_else(|| anyhow!("cheque id must be 64 hex characters"))
}

fn memo(s: &str) -> anyhow::Result<Memo> {
    Ok(Memo::new(s)?)
}

/// Runs `verity cheque …`.
pub fn run(cmd: ChequeCmd) -> anyhow::Result<()> {
    match cmd {
        ChequeCmd::Issue {
            payee,
            asset,
            amount,
            valid_from,
            expires,
            submit: args,
            node,
        } => {
            let client = Client::new(&node.node);
            let (asset, amount) = asset_amount(&client, &asset, &amount)?;
            let body = TxBody::ChequeIssue {
                payee: payee.parse()?,
                asset,
                amount,
                valid_from_ms: valid_from.as_deref().map(parse_time_ms).transpose()?,
                expires_ms: expires.as_deref().map(parse_time_ms).transpose()?,
                memo: memo(&args.memo)?,
            };
            let (id, _) = submit_tx(&client, &args, body)?;
            println!("cheque {}", cheque_id(&id));
            Ok(())
        }
        ChequeCmd::Endorse {
            cheque,
            to,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::ChequeEndorse {
                cheque: cheque_arg(&cheque)?,
                to: to.parse()?,
            },
        ),
        ChequeCmd::Present {
            cheque,
            submit: args,
            node,
        } => {
            let (_, done) = submit_tx(
                &Client::new(&node.node),
                &args,
                TxBody::ChequePresent {
                    cheque: cheque_arg(&cheque)?,
                },
            )?;
            if done.is_some_and(|d| d["receipt"]["outcome"] == "ok") {
                println!("outcome: cleared");
            }
            Ok(())
        }
        ChequeCmd::Stop {
            cheque,
            reason,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::ChequeStop {
                cheque: cheque_arg(&cheque)?,
                reason: memo(&reason)?,
            },
        ),
        ChequeCmd::Cancel {
            cheque,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::ChequeCancel {
                cheque: cheque_arg(&cheque)?,
            },
        ),
        ChequeCmd::Pledge {
            cheque,
            to,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::ChequePledge {
                cheque: cheque_arg(&cheque)?,
                to: to.parse()?,
            },
        ),
        ChequeCmd::Release {
            cheque,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::ChequeRelease {
                cheque: cheque_arg(&cheque)?,
            },
        ),
        ChequeCmd::Show { cheque, node } => {
            let id = cheque_arg(&cheque)?;
            print(&Client::new(&node.node).get(&format!("/v1/cheques/{id}"))?);
            Ok(())
        }
        ChequeCmd::List {
            drawer,
            holder,
            state,
            limit,
            after,
            node,
        } => {
            let mut path = format!("/v1/cheques?limit={limit}");
            if let Some(d) = drawer {
                path.push_str(&format!("&drawer={}", d.parse::<AccountId>()?));
            }
            if let Some(h) = holder {
                path.push_str(&format!("&holder={}", h.parse::<AccountId>()?));
            }
            if let Some(s) = state {
                path.push_str(&format!("&state={s}"));
            }
            if let Some(a) = after {
                path.push_str(&format!("&after={}", cheque_arg(&a)?));
            }
            print(&Client::new(&node.node).get(&path)?);
            Ok(())
        }
        ChequeCmd::PaperPresent {
            image,
            number,
            drawer,
            payee,
            asset,
            amount,
            submit: args,
            node,
        } => {
            let client = Client::new(&node.node);
            let bytes = std::fs::read(&image)
                .with_context(|| format!("cannot read {}", image.display()))?;
            let number: ChequeNumber = number.parse()?;
            let drawer: AccountId = drawer.parse()?;
            let (asset, amount) = asset_amount(&client, &asset, &amount)?;
            submit_tx(
                &client,
                &args,
                TxBody::PaperPresent {
                    image_sha256: sha256(&bytes),
                    number: number.clone(),
                    drawer,
                    payee: payee.parse()?,
                    asset,
                    amount,
                },
            )?;
            println!("cheque {}", paper_cheque_id(&drawer, &number));
            Ok(())
        }
        ChequeCmd::PaperHonour {
            cheque,
            submit: args,
            node,
        } => {
            let (_, done) = submit_tx(
                &Client::new(&node.node),
                &args,
                TxBody::PaperDecide {
                    cheque: cheque_arg(&cheque)?,
                    honour: true,
                    reason: Memo::default(),
                },
            )?;
            if done.is_some_and(|d| d["receipt"]["outcome"] == "ok") {
                println!("outcome: cleared");
            }
            Ok(())
        }
        ChequeCmd::PaperReturn {
            cheque,
            reason,
            submit: args,
            node,
        } => submit(
            &Client::new(&node.node),
            &args,
            TxBody::PaperDecide {
                cheque: cheque_arg(&cheque)?,
                honour: false,
                reason: memo(&reason)?,
            },
        ),
        ChequeCmd::Export {
            iso20022,
            out,
            cheques,
            drawer,
            holder,
            sender,
            node,
        } => {
            if !iso20022 {
                bail!("choose a format: --iso20022");
            }
            export(
                &Client::new(&node.node),
                &out,
                cheques,
                drawer,
                holder,
                &sender,
            )
        }
    }
}

/// Every cheque (JSON, with events) to export: the ones named, or all matching the filters.
fn cheques_to_export(
    client: &Client,
    ids: Vec<String>,
    drawer: Option<String>,
    holder: Option<String>,
) -> anyhow::Result<Vec<Value>> {
    let mut ids: Vec<Hash> = ids
        .iter()
        .map(|s| cheque_arg(s))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        let mut base = "/v1/cheques?limit=100".to_string();
        if let Some(d) = drawer {
            base.push_str(&format!("&drawer={}", d.parse::<AccountId>()?));
        }
        if let Some(h) = holder {
            base.push_str(&format!("&holder={}", h.parse::<AccountId>()?));
        }
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("{base}&after={a}"),
                None => base.clone(),
            };
            let page = client.get(&path)?;
            for c in page["cheques"].as_array().into_iter().flatten() {
                if let Some(id) = c["cheque_id"].as_str().and_then(parse_hash) {
                    ids.push(id);
                }
            }
            after = page["next_after"].as_str().map(str::to_string);
            if after.is_none() {
                break;
            }
        }
    }
    ids.iter()
        .map(|id| Ok(client.get(&format!("/v1/cheques/{id}"))?))
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn export(
    client: &Client,
    out: &std::path::Path,
    ids: Vec<String>,
    drawer: Option<String>,
    holder: Option<String>,
    sender: &str,
) -> anyhow::Result<()> {
    use verity_iso20022 as iso;
    let cheques = cheques_to_export(client, ids, drawer, holder)?;
    let mut decimals = std::collections::BTreeMap::new();
    let mut events = Vec::new();
    for c in &cheques {
        let asset = text(&c["asset"]);
        if !decimals.contains_key(&asset) {
            let info = client.get(&format!("/v1/assets/{asset}"))?;
            decimals.insert(
                asset.clone(),
                (
                    info["decimals"].as_u64().unwrap_or(0) as u8,
                    text(&info["issuer"]),
                ),
            );
        }
        let (dec, issuer) = decimals[&asset].clone();
        let id = text(&c["cheque_id"]);
        let number = match c["paper"]["number"].as_str() {
            Some(n) => n.to_string(),
            None => id[..16].to_string(),
        };
        let cheque = || iso::Cheque {
            id: id.clone(),
            number: number.clone(),
            drawer: iso::Party {
                account: text(&c["drawer"]),
                name: None,
            },
            payee: iso::Party {
                account: text(&c["payee"]),
                name: None,
            },
            drawer_agent: Some(issuer.clone()),
            currency: asset.clone(),
            amount_minor: text(&c["amount"]).parse().unwrap_or(0),
            decimals: dec,
            issued_ms: c["issued_ms"].as_u64().unwrap_or(0),
            valid_from_ms: c["valid_from_ms"].as_u64(),
            expires_ms: c["expires_ms"].as_u64(),
            memo: text(&c["memo"]),
        };
        for ev in c["events"].as_array().into_iter().flatten() {
            let at_ms = ev["timestamp_ms"].as_u64().unwrap_or(0);
            let tx_id = text(&ev["tx_id"]);
            let height = ev["height"].as_u64().unwrap_or(0);
            let detail = text(&ev["detail"]);
            match ev["action"].as_str().unwrap_or_default() {
                "present" | "honour" | "return" => {
                    let outcome = match detail.strip_prefix("dishonoured:") {
                        Some(reason) if reason.starts_with("returned") => {
                            format!("returned:{}", text(&c["return_reason"]))
                        }
                        Some(reason) => reason.to_string(),
                        None => "cleared".to_string(),
                    };
                    let presenter = c["presented_by"]
                        .as_str()
                        .map_or_else(|| text(&ev["by"]), str::to_string);
                    events.push(iso::Event::Presented {
                        cheque: cheque(),
                        presenter: iso::Party {
                            account: presenter,
                            name: None,
                        },
                        at_ms,
                        tx_id,
                        height,
                        outcome,
                    });
                }
                "stop" => events.push(iso::Event::Stopped {
                    cheque: cheque(),
                    at_ms,
                    tx_id,
                    height,
                    reason: detail,
                }),
                "cancel" => events.push(iso::Event::Cancelled {
                    cheque: cheque(),
                    at_ms,
                    tx_id,
                    height,
                }),
                _ => {}
            }
        }
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let messages = iso::export(&events, sender, now_ms)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for m in &messages {
        let path = out.join(&m.file_name);
        std::fs::write(&path, &m.xml)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{} {}", m.kind, path.display());
    }
    println!(
        "exported {} messages for {} cheques ({} events) at {}",
        messages.len(),
        cheques.len(),
        events.len(),
        format_time_ms(now_ms)
    );
    Ok(())
}
