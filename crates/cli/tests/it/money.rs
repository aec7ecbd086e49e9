//! Money end to end on one 4-validator network, through the CLI as a user drives it: wallets
//! funded by the issuer and put in tiers, a digital cheque endorsed twice and cleared, cheques
//! dishonoured for want of funds, a stop and a freeze, a truncated paper cheque and its refused
//! duplicate, tier limits and freezes on transfers, histories that replay to the balances, an
//! offline proof of a clearing that fails once tampered with, and the ISO 20022 export.

use crate::harness::{Net, verity, wait_for};
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Output,
    time::Duration,
};

/// The header `verity account history --csv` prints.
const CSV_HEADER: &str =
    "height,time,timestamp_ms,tx_id,kind,asset,direction,delta,counterparty,balance_after,memo,seq";

/// The movements a history should hold, in order: (kind, delta in fen).
type Moves = [(&'static str, i128)];

/// An account of the test and its key file.
struct Wallet {
    name: &'static str,
    id: String,
    key: String,
}

/// A committed transaction as the CLI reports it.
#[derive(Clone, Debug)]
struct Committed {
    tx: String,
    height: u64,
    /// The `outcome:` line, when the CLI printed one.
    outcome: Option<String>,
    stdout: String,
}

impl Committed {
    /// Parses `committed <tx> at height <h>` and `outcome: <o>` from a signing command.
    fn parse(stdout: String) -> Self {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("committed "))
            .unwrap_or_else(|| panic!("no `committed` line in {stdout:?}"));
        let (tx, height) = line
            .split_once(" at height ")
            .unwrap_or_else(|| panic!("malformed `committed` line {line:?}"));
        let outcome = stdout
            .lines()
            .find_map(|l| l.strip_prefix("outcome: "))
            .map(str::to_string);
        Self {
            tx: tx.to_string(),
            height: height.parse().expect("height is a number"),
            outcome,
            stdout,
        }
    }

    /// The id printed as `<prefix> <id>` (a cheque, a paper cheque).
    fn printed(&self, prefix: &str) -> String {
        let tag = format!("{prefix} ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(tag.as_str()))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {:?}", self.stdout))
            .to_string()
    }
}

/// The CLI pointed at one node.
struct Cli<'a> {
    net: &'a Net,
    node: String,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--node", &self.node]);
        verity(&all)
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "verity {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs a signing command that must commit.
    fn commit(&self, args: &[&str]) -> Committed {
        Committed::parse(self.ok(args))
    }

    /// Runs a command that must be refused; returns the error code from
    /// `error: <code>: <message>` on stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "verity {args:?} should have been refused; it printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(out.status.code(), Some(1), "exit code of {args:?}");
        let (code, _) = stderr
            .trim()
            .strip_prefix("error: ")
            .and_then(|rest| rest.split_once(": "))
            .unwrap_or_else(|| panic!("stderr of {args:?} is not `error: <code>: …`: {stderr}"));
        code.to_string()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("the CLI prints JSON")
    }

    /// The CNY balance of `account`, in fen.
    fn balance(&self, account: &str) -> u64 {
        cny_balance(&self.json(&["account", "show", account]))
    }

    fn cheque(&self, id: &str) -> Value {
        self.json(&["cheque", "show", id])
    }

    /// Makes a fresh account key in the testnet folder.
    fn new_wallet(&self, name: &'static str) -> Wallet {
        let key = self.net.path().join(format!("{name}.key"));
        let key = key.to_str().unwrap().to_string();
        let out = verity(&["keys", "new", "--out", &key]);
        assert!(out.status.success(), "keys new: {out:?}");
        let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(id.len(), 40, "an account id: {id:?}");
        Wallet { name, id, key }
    }

    fn transfer(&self, from: &Wallet, to: &Wallet, amount: &str) -> Committed {
        self.commit(&[
            "transfer", "--to", &to.id, "--asset", "CNY", "--amount", amount, "--key", &from.key,
        ])
    }

    fn transfer_refused(&self, from: &Wallet, to: &Wallet, amount: &str) -> String {
        self.refused(&[
            "transfer", "--to", &to.id, "--asset", "CNY", "--amount", amount, "--key", &from.key,
        ])
    }

    /// Issues a cheque; returns its id.
    fn issue(&self, drawer: &Wallet, payee: &Wallet, amount: &str, memo: &str) -> String {
        self.commit(&[
            "cheque",
            "issue",
            "--payee",
            &payee.id,
            "--asset",
            "CNY",
            "--amount",
            amount,
            "--memo",
            memo,
            "--key",
            &drawer.key,
        ])
        .printed("cheque")
    }

    fn present(&self, cheque: &str, by: &Wallet) -> Committed {
        self.commit(&["cheque", "present", cheque, "--key", &by.key])
    }
}

fn cny_balance(account: &Value) -> u64 {
    account["balances"]
        .as_array()
        .expect("balances")
        .iter()
        .find(|b| b["asset"] == "CNY")
        .map_or(0, |b| b["amount"].as_str().unwrap().parse().unwrap())
}

/// A cheque's lifecycle as (action, by, to, detail).
fn events(cheque: &Value) -> Vec<(String, String, Option<String>, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    cheque["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                s(&e["action"]),
                s(&e["by"]),
                e["to"].as_str().map(str::to_string),
                s(&e["detail"]),
            )
        })
        .collect()
}

fn ev(
    action: &str,
    by: &Wallet,
    to: Option<&Wallet>,
    detail: &str,
) -> (String, String, Option<String>, String) {
    (
        action.into(),
        by.id.clone(),
        to.map(|w| w.id.clone()),
        detail.into(),
    )
}

/// Everything the scenario creates, for the checks at the end.
struct Money<'a> {
    cli: Cli<'a>,
    issuer: Wallet,
    regulator: Wallet,
    drawer: Wallet,
    payee: Wallet,
    e1: Wallet,
    e2: Wallet,
    lender: Wallet,
    poor: Wallet,
}

/// The transactions and cheques later checks refer to.
#[derive(Default)]
struct Made {
    cleared: String,
    clearing: Option<Committed>,
    bounced: String,
    stopped: String,
    paper_honour: Option<Committed>,
}

impl<'a> Money<'a> {
    /// Funds six fresh accounts from the issuer and puts the drawer in tier `verified`.
    fn fund(net: &'a Net) -> Self {
        let cli = Cli {
            net,
            node: net.url(0),
        };
        let genesis = |name: &'static str| {
            let key = net.key(name).to_str().unwrap().to_string();
            let out = verity(&["keys", "show", &key]);
            assert!(out.status.success());
            let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
            Wallet { name, id, key }
        };
        let m = Self {
            issuer: genesis("issuer"),
            regulator: genesis("regulator"),
            drawer: cli.new_wallet("drawer"),
            payee: cli.new_wallet("payee"),
            e1: cli.new_wallet("e1"),
            e2: cli.new_wallet("e2"),
            lender: cli.new_wallet("lender"),
            poor: cli.new_wallet("poor"),
            cli,
        };
        for (w, amount) in [
            (&m.drawer, "8000.00"),
            (&m.payee, "100.00"),
            (&m.e1, "2500.00"),
            (&m.e2, "100.00"),
            (&m.lender, "100.00"),
            (&m.poor, "50.00"),
        ] {
            let done = m.cli.transfer(&m.issuer, w, amount);
            assert_eq!(done.outcome, None, "a plain transfer has no outcome line");
        }
        assert_eq!(m.cli.balance(&m.drawer.id), 800_000);
        assert_eq!(m.cli.balance(&m.poor.id), 5_000);
        let show = m.cli.json(&["account", "show", &m.drawer.id]);
        assert_eq!(show["tier"], "anonymous", "new accounts are anonymous");
        m.cli.commit(&[
            "account",
            "set-tier",
            &m.drawer.id,
            "verified",
            "--key",
            &m.regulator.key,
        ]);
        let show = m.cli.json(&["account", "show", &m.drawer.id]);
        assert_eq!(show["tier"], "verified");
        m
    }

    /// Drawer → payee → e1 → e2, presented by e2: it clears, once.
    fn endorsed_cheque_clears(&self, made: &mut Made) {
        let (cli, drawer, payee, e1, e2) =
            (&self.cli, &self.drawer, &self.payee, &self.e1, &self.e2);
        // 3,000.00 is over the anonymous single-payment limit (2,000.00): the verified tier pays it.
        let c = cli.issue(drawer, payee, "3000.00", "invoice 42");
        assert_eq!(cli.cheque(&c)["state"], "issued");
        cli.commit(&["cheque", "endorse", &c, "--to", &e1.id, "--key", &payee.key]);
        // The payee no longer holds it.
        let code = cli.refused(&[
            "cheque",
            "endorse",
            &c,
            "--to",
            &self.lender.id,
            "--key",
            &payee.key,
        ]);
        assert_eq!(code, "unauthorized");
        cli.commit(&["cheque", "endorse", &c, "--to", &e2.id, "--key", &e1.key]);
        let shown = cli.cheque(&c);
        assert_eq!(
            (shown["state"].as_str(), shown["holder"].as_str()),
            (Some("endorsed"), Some(e2.id.as_str()))
        );
        let before = [drawer, payee, e1, e2].map(|w| cli.balance(&w.id));

        let done = cli.present(&c, e2);
        assert_eq!(done.outcome.as_deref(), Some("cleared"), "{}", done.stdout);
        let after = [drawer, payee, e1, e2].map(|w| cli.balance(&w.id));
        assert_eq!(
            after,
            [
                before[0] - 300_000,
                before[1],
                before[2],
                before[3] + 300_000
            ],
            "the value moves from the drawer to the last holder only"
        );
        let shown = cli.cheque(&c);
        assert_eq!(shown["state"], "cleared");
        assert_eq!(shown["presented_by"], e2.id.as_str());
        assert_eq!(shown["amount"], "300000");
        assert_eq!(
            events(&shown),
            vec![
                ev("issue", drawer, Some(payee), ""),
                ev("endorse", payee, Some(e1), ""),
                ev("endorse", e1, Some(e2), ""),
                ev("present", e2, None, "cleared"),
            ]
        );
        let last = &shown["events"][3];
        assert_eq!(last["tx_id"], done.tx.as_str());
        assert_eq!(last["height"].as_u64(), Some(done.height));

        // Presenting it again is refused and changes nothing.
        assert_eq!(
            cli.refused(&["cheque", "present", &c, "--key", &e2.key]),
            "cheque_state"
        );
        assert_eq!([drawer, payee, e1, e2].map(|w| cli.balance(&w.id)), after);
        assert_eq!(events(&cli.cheque(&c)).len(), 4);
        let listed = cli.json(&["cheque", "list", "--holder", &e2.id, "--state", "cleared"]);
        let ids: Vec<_> = listed["cheques"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cheque_id"].clone())
            .collect();
        assert_eq!(ids, vec![Value::from(c.as_str())]);
        made.cleared = c;
        made.clearing = Some(done);
    }

    /// A cheque over its drawer's balance bounces; no money moves.
    fn cheque_without_funds_is_dishonoured(&self, made: &mut Made) {
        let (cli, poor, payee) = (&self.cli, &self.poor, &self.payee);
        let c = cli.issue(poor, payee, "80.00", "rent");
        let before = [cli.balance(&poor.id), cli.balance(&payee.id)];
        let done = cli.present(&c, payee);
        assert_eq!(
            done.outcome.as_deref(),
            Some("dishonoured:insufficient_funds"),
            "{}",
            done.stdout
        );
        assert_eq!([cli.balance(&poor.id), cli.balance(&payee.id)], before);
        let shown = cli.cheque(&c);
        assert_eq!(shown["state"], "dishonoured");
        assert_eq!(shown["dishonour_reason"], "insufficient_funds");
        assert_eq!(
            events(&shown).last().unwrap(),
            &ev("present", payee, None, "dishonoured:insufficient_funds")
        );
        let listed = cli.json(&["cheque", "list", "--drawer", &poor.id]);
        let states: Vec<_> = listed["cheques"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["cheque_id"].clone(), c["state"].clone()))
            .collect();
        assert_eq!(
            states,
            vec![(Value::from(c.as_str()), Value::from("dishonoured"))]
        );
        made.bounced = c;
    }

    /// A cheque pledged to a lender and then stopped by its drawer bounces when the lender
    /// presents it.
    fn stopped_cheque_is_dishonoured(&self, made: &mut Made) {
        let (cli, drawer, payee, lender) = (&self.cli, &self.drawer, &self.payee, &self.lender);
        let c = cli.issue(drawer, payee, "500.00", "deposit");
        cli.commit(&[
            "cheque", "pledge", &c, "--to", &lender.id, "--key", &payee.key,
        ]);
        cli.commit(&[
            "cheque",
            "stop",
            &c,
            "--reason",
            "goods not delivered",
            "--key",
            &drawer.key,
        ]);
        assert_eq!(cli.cheque(&c)["state"], "stopped");
        let before = [cli.balance(&drawer.id), cli.balance(&lender.id)];
        let done = cli.present(&c, lender);
        assert_eq!(
            done.outcome.as_deref(),
            Some("dishonoured:stopped"),
            "{}",
            done.stdout
        );
        assert_eq!([cli.balance(&drawer.id), cli.balance(&lender.id)], before);
        let shown = cli.cheque(&c);
        assert_eq!(shown["state"], "dishonoured");
        assert_eq!(shown["dishonour_reason"], "stopped");
        assert_eq!(
            events(&shown),
            vec![
                ev("issue", drawer, Some(payee), ""),
                ev("pledge", payee, Some(lender), ""),
                ev("stop", drawer, None, "goods not delivered"),
                ev("present", lender, None, "dishonoured:stopped"),
            ]
        );
        made.stopped = c;
    }

    /// The bank presents a scanned paper cheque, honours it, and refuses the same paper again.
    fn paper_cheque_clears_once(&self, made: &mut Made) {
        let (cli, bank, drawer, payee) = (&self.cli, &self.issuer, &self.drawer, &self.payee);
        let dir = cli.net.path();
        let image = dir.join("cheque-000123.png");
        let bytes = b"\x89PNG scanned cheque 000123, front and back".to_vec();
        std::fs::write(&image, &bytes).unwrap();
        let present = |image: &Path| -> Vec<String> {
            [
                "cheque",
                "paper-present",
                "--image",
                image.to_str().unwrap(),
                "--number",
                "000123",
                "--drawer",
                &drawer.id,
                "--payee",
                &payee.id,
                "--asset",
                "CNY",
                "--amount",
                "250.00",
                "--key",
                &bank.key,
            ]
            .map(str::to_string)
            .to_vec()
        };
        let args = present(&image);
        let c = cli
            .commit(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .printed("cheque");
        let shown = cli.cheque(&c);
        assert_eq!(shown["kind"], "paper");
        assert_eq!(shown["state"], "presented");
        assert_eq!(shown["paper"]["number"], "000123");
        assert_eq!(
            shown["paper"]["image_sha256"],
            verity_types::hash::sha256(&bytes).to_string()
        );
        let before = [cli.balance(&drawer.id), cli.balance(&payee.id)];

        let done = cli.commit(&["cheque", "paper-honour", &c, "--key", &bank.key]);
        assert_eq!(done.outcome.as_deref(), Some("cleared"), "{}", done.stdout);
        assert_eq!(
            [cli.balance(&drawer.id), cli.balance(&payee.id)],
            [before[0] - 25_000, before[1] + 25_000]
        );
        let shown = cli.cheque(&c);
        assert_eq!(shown["state"], "cleared");
        assert_eq!(
            events(&shown),
            vec![
                ev("paper_present", bank, Some(payee), ""),
                ev("honour", bank, None, "cleared"),
            ]
        );

        // The same paper (drawer and number) again, even scanned anew, is refused.
        let rescan = dir.join("cheque-000123-rescan.png");
        std::fs::write(&rescan, b"\x89PNG another scan of cheque 000123").unwrap();
        let args = present(&rescan);
        let code = cli.refused(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, "duplicate_presentment");
        assert_eq!(
            [cli.balance(&drawer.id), cli.balance(&payee.id)],
            [before[0] - 25_000, before[1] + 25_000]
        );
        assert_eq!(events(&cli.cheque(&c)).len(), 2);
        made.paper_honour = Some(done);
    }

    /// A frozen payee cannot be paid by cheque or transfer until unfrozen; an anonymous wallet
    /// cannot pay over its single-payment limit.
    fn freezes_and_limits(&self) {
        let (cli, reg, drawer, payee) = (&self.cli, &self.regulator, &self.drawer, &self.payee);
        let c = cli.issue(drawer, payee, "100.00", "refund");
        cli.commit(&[
            "account",
            "freeze",
            &payee.id,
            "--reason",
            "court order 7",
            "--key",
            &reg.key,
        ]);
        let shown = cli.json(&["account", "show", &payee.id]);
        assert_eq!(
            (shown["frozen"].as_bool(), shown["frozen_reason"].as_str()),
            (Some(true), Some("court order 7"))
        );
        let before = [cli.balance(&drawer.id), cli.balance(&payee.id)];
        let done = cli.present(&c, payee);
        assert_eq!(
            done.outcome.as_deref(),
            Some("dishonoured:frozen"),
            "{}",
            done.stdout
        );
        assert_eq!([cli.balance(&drawer.id), cli.balance(&payee.id)], before);
        assert_eq!(cli.cheque(&c)["dishonour_reason"], "frozen");
        assert_eq!(
            cli.transfer_refused(&self.issuer, payee, "1.00"),
            "recipient_frozen"
        );
        assert_eq!(cli.balance(&payee.id), before[1]);

        cli.commit(&["account", "unfreeze", &payee.id, "--key", &reg.key]);
        assert_eq!(cli.json(&["account", "show", &payee.id])["frozen"], false);
        cli.transfer(&self.issuer, payee, "1.00");
        assert_eq!(cli.balance(&payee.id), before[1] + 100);

        // e1 is anonymous (single payment 2,000.00) and holds 2,500.00.
        let e1_before = cli.balance(&self.e1.id);
        assert_eq!(e1_before, 250_000);
        assert_eq!(
            cli.transfer_refused(&self.e1, &self.e2, "2000.01"),
            "limit_single_payment"
        );
        assert_eq!(cli.balance(&self.e1.id), e1_before);
    }

    /// Every wallet's history replays from its starting balance (the issuer's genesis balance,
    /// zero for the others) to its balance now, entry by entry, and holds exactly the movements
    /// the scenario made, in order.
    fn histories_replay(&self, made: &Made) {
        let cli = &self.cli;
        let clearing = made.clearing.as_ref().unwrap();
        let honour = made.paper_honour.as_ref().unwrap();
        // The issuer starts with its genesis balance, every other wallet empty.
        let genesis: Value =
            serde_json::from_slice(&std::fs::read(cli.net.path().join("genesis.json")).unwrap())
                .unwrap();
        let supply = genesis["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account"] == self.issuer.id.as_str())
            .and_then(|a| a["balances"]["CNY"].as_u64())
            .expect("the issuer's genesis balance");
        let funding: &Moves = &[
            ("transfer", -800_000),
            ("transfer", -10_000),
            ("transfer", -250_000),
            ("transfer", -10_000),
            ("transfer", -10_000),
            ("transfer", -5_000),
            ("transfer", -100),
        ];
        let expected: [(&Wallet, u64, &Moves); 7] = [
            (&self.issuer, supply, funding),
            (
                &self.drawer,
                0,
                &[
                    ("transfer", 800_000),
                    ("cheque", -300_000),
                    ("cheque", -25_000),
                ],
            ),
            (
                &self.payee,
                0,
                &[("transfer", 10_000), ("cheque", 25_000), ("transfer", 100)],
            ),
            (&self.e1, 0, &[("transfer", 250_000)]),
            (&self.e2, 0, &[("transfer", 10_000), ("cheque", 300_000)]),
            (&self.lender, 0, &[("transfer", 10_000)]),
            (&self.poor, 0, &[("transfer", 5_000)]),
        ];
        let mut histories = BTreeMap::new();
        for (w, start, moves) in expected {
            // A small page size, so that --all has to follow cursors.
            let page = cli.json(&["account", "history", &w.id, "--all", "--limit", "2"]);
            let entries = page["entries"].as_array().unwrap().clone();
            let mut running = i128::from(start);
            for e in &entries {
                assert_eq!(e["asset"], "CNY", "{}: {e}", w.name);
                running += e["delta"].as_str().unwrap().parse::<i128>().unwrap();
                assert_eq!(
                    e["balance_after"].as_u64().map(i128::from),
                    Some(running),
                    "{}: entry {e}",
                    w.name
                );
            }
            assert_eq!(
                running,
                i128::from(cli.balance(&w.id)),
                "{}: history does not add up to the balance",
                w.name
            );
            let got: Vec<(String, i128)> = entries
                .iter()
                .map(|e| {
                    (
                        e["kind"].as_str().unwrap().to_string(),
                        e["delta"].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            let want: Vec<(String, i128)> =
                moves.iter().map(|(k, d)| (k.to_string(), *d)).collect();
            assert_eq!(got, want, "{}'s history", w.name);
            histories.insert(w.name, entries);
        }
        // The clearing is in both the drawer's and e2's history, each the other's counterparty.
        let find = |name: &str| {
            histories[name]
                .iter()
                .find(|e| e["tx_id"] == clearing.tx.as_str())
                .unwrap_or_else(|| panic!("the clearing is not in {name}'s history"))
                .clone()
        };
        let (d, e) = (find("drawer"), find("e2"));
        assert_eq!(
            (d["kind"].as_str(), d["direction"].as_str()),
            (Some("cheque"), Some("out"))
        );
        assert_eq!(
            (e["kind"].as_str(), e["direction"].as_str()),
            (Some("cheque"), Some("in"))
        );
        assert_eq!(d["counterparty"], self.e2.id.as_str());
        assert_eq!(e["counterparty"], self.drawer.id.as_str());
        assert_eq!(
            (d["height"].as_u64(), e["height"].as_u64()),
            (Some(clearing.height), Some(clearing.height))
        );

        // --kind cheque --csv: the header and exactly the cheque movements.
        let csv_rows = |w: &Wallet| -> Vec<Vec<String>> {
            let text = cli.ok(&["account", "history", &w.id, "--kind", "cheque", "--csv"]);
            assert_eq!(
                text.lines().next(),
                Some(CSV_HEADER),
                "{}'s CSV header",
                w.name
            );
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            reader
                .records()
                .map(|r| {
                    let r = r.expect("a CSV record");
                    // height, tx_id, kind, asset, direction, delta, counterparty, balance_after, memo
                    [0, 3, 4, 5, 6, 7, 8, 9, 10]
                        .iter()
                        .map(|&i| r[i].to_string())
                        .collect()
                })
                .collect()
        };
        let row =
            |c: &Committed, dir: &str, delta: &str, other: &Wallet, after: u64, memo: &str| {
                [
                    &c.height.to_string(),
                    &c.tx,
                    "cheque",
                    "CNY",
                    dir,
                    delta,
                    &other.id,
                    &after.to_string(),
                    memo,
                ]
                .map(str::to_string)
                .to_vec()
            };
        assert_eq!(
            csv_rows(&self.drawer),
            vec![
                row(clearing, "out", "-300000", &self.e2, 500_000, "invoice 42"),
                row(
                    honour,
                    "out",
                    "-25000",
                    &self.payee,
                    475_000,
                    "paper cheque 000123"
                ),
            ]
        );
        assert_eq!(
            csv_rows(&self.e2),
            vec![row(
                clearing,
                "in",
                "300000",
                &self.drawer,
                310_000,
                "invoice 42"
            )]
        );
        assert_eq!(csv_rows(&self.poor), Vec::<Vec<String>>::new());
    }

    /// The clearing's proof verifies offline with the genesis file and names its movements;
    /// a copy with a changed movement does not verify.
    fn clearing_proof_verifies(&self, made: &Made) {
        let dir = self.cli.net.path();
        let clearing = made.clearing.as_ref().unwrap();
        let proof = dir.join("clearing-proof.json");
        self.cli.ok(&[
            "proof",
            "tx",
            &clearing.tx,
            "--out",
            proof.to_str().unwrap(),
        ]);
        let genesis = dir.join("genesis.json");
        let verify = |file: &Path| {
            verity(&[
                "verify",
                file.to_str().unwrap(),
                "--genesis",
                genesis.to_str().unwrap(),
            ])
        };
        let out = verify(&proof);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        let valid = format!(
            "valid: transaction {} (cheque_present) by {} committed at height {} ",
            clearing.tx, self.e2.id, clearing.height
        );
        assert!(lines[0].starts_with(&valid), "{stdout}");
        assert!(lines.contains(&"outcome: ok"), "{stdout}");
        let paid = format!(
            "movement: account {} paid 300000 CNY (counterparty {}, balance after 500000, memo \"invoice 42\")",
            self.drawer.id, self.e2.id
        );
        let received = format!(
            "movement: account {} received 300000 CNY (counterparty {}, balance after 310000, memo \"invoice 42\")",
            self.e2.id, self.drawer.id
        );
        let movements: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("movement:"))
            .collect();
        assert_eq!(
            movements,
            vec![paid.as_str(), received.as_str()],
            "{stdout}"
        );

        let original: Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
        assert_eq!(original["receipt"]["movements"][1]["delta"], "300000");
        for (field, forged) in [("delta", "3000000"), ("balance_after", "3100000")] {
            let mut tampered = original.clone();
            tampered["receipt"]["movements"][1][field] = forged.into();
            let file = dir.join(format!("tampered-{field}.json"));
            std::fs::write(&file, serde_json::to_vec_pretty(&tampered).unwrap()).unwrap();
            let out = verify(&file);
            assert!(
                !out.status.success(),
                "a proof with a forged {field} verified: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("proof does not verify"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The ISO 20022 export: a camt.107 per presentment, a camt.108 and a camt.109 for the stop.
    fn iso20022_export(&self, made: &Made) {
        let out_dir = self.cli.net.path().join("iso20022");
        let stdout = self.cli.ok(&[
            "cheque",
            "export",
            "--iso20022",
            "--out",
            out_dir.to_str().unwrap(),
            &made.cleared,
            &made.bounced,
            &made.stopped,
        ]);
        let cheques = [
            (&made.cleared, "3000.00", "<Outcome>cleared</Outcome>"),
            (
                &made.bounced,
                "80.00",
                "<Reason>insufficient_funds</Reason>",
            ),
            (&made.stopped, "500.00", "<Reason>stopped</Reason>"),
        ];
        // Which cheques each message kind names.
        let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut files = BTreeSet::new();
        for entry in std::fs::read_dir(&out_dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let xml = std::fs::read_to_string(&path).unwrap();
            let kind = name.split('-').next().unwrap().to_string();
            let (id, amount, outcome) = cheques
                .iter()
                .find(|(id, ..)| xml.contains(&format!("<ChequeId>{id}</ChequeId>")))
                .unwrap_or_else(|| panic!("{name} names none of the exported cheques"));
            assert!(
                xml.contains(&format!("<Amt Ccy=\"CNY\">{amount}</Amt>")),
                "{name} lacks the amount {amount}"
            );
            if kind == "camt.107" {
                assert!(xml.contains(outcome), "{name} lacks {outcome}");
            }
            named.entry(kind).or_default().push(id.to_string());
            files.insert(name);
        }
        for ids in named.values_mut() {
            ids.sort();
        }
        let mut presented = vec![
            made.cleared.clone(),
            made.bounced.clone(),
            made.stopped.clone(),
        ];
        presented.sort();
        assert_eq!(
            named,
            BTreeMap::from([
                ("camt.107".to_string(), presented),
                ("camt.108".to_string(), vec![made.stopped.clone()]),
                ("camt.109".to_string(), vec![made.stopped.clone()]),
            ]),
            "files: {files:?}"
        );
        // The cleared cheque's camt.107 is the clearing transaction's.
        let clearing = made.clearing.as_ref().unwrap();
        let file = format!("camt.107-{}-{}.xml", clearing.height, &clearing.tx[..16]);
        assert!(files.contains(&file), "no {file} in {files:?}");
        assert!(
            stdout.contains("exported 5 messages for 3 cheques"),
            "{stdout}"
        );
    }

    /// Another validator shows the same balances and cheque states.
    fn other_node_agrees(&self, made: &Made) {
        let wallets = [
            &self.drawer,
            &self.payee,
            &self.e1,
            &self.e2,
            &self.lender,
            &self.poor,
        ];
        let here: Vec<u64> = wallets.iter().map(|w| self.cli.balance(&w.id)).collect();
        wait_for(
            "node3 to show the same balances",
            Duration::from_secs(30),
            || {
                let got: Vec<u64> = wallets
                    .iter()
                    .map(|w| {
                        self.cli
                            .net
                            .client(3)
                            .account(&w.id.parse().unwrap())
                            .ok()
                            .map(|a| cny_balance(&a))
                    })
                    .collect::<Option<_>>()?;
                (got == here).then_some(())
            },
        );
        for c in [&made.cleared, &made.bounced, &made.stopped] {
            let state = self.cli.cheque(c)["state"].clone();
            wait_for(
                "node3 to show the same cheque state",
                Duration::from_secs(30),
                || {
                    let there = self
                        .cli
                        .net
                        .client(3)
                        .get(&format!("/v1/cheques/{c}"))
                        .ok()?;
                    (there["state"] == state).then_some(())
                },
            );
        }
    }
}

#[test]
fn wallets_and_cheques_end_to_end() {
    let net = Net::start(4);
    let money = Money::fund(&net);
    let mut made = Made::default();
    money.endorsed_cheque_clears(&mut made);
    money.cheque_without_funds_is_dishonoured(&mut made);
    money.stopped_cheque_is_dishonoured(&mut made);
    money.paper_cheque_clears_once(&mut made);
    money.freezes_and_limits();
    money.histories_replay(&made);
    money.clearing_proof_verifies(&made);
    money.iso20022_export(&made);
    money.other_node_agrees(&made);
}
