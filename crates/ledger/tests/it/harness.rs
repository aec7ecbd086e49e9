//! Shared fixtures: a standard cast of accounts with deterministic keys, a genesis with two
//! banks, a regulator and wallet tiers that bite, and [Chain], an in-memory ledger that executes
//! blocks through the same functions a node calls and keeps the state between them.

use futures::executor::block_on;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use verity_ledger::{
    BlockError, Checks, TxError, VerifyAll, VerifyReadings, accounts,
    cheques::{self, ChequeRecord},
    execute::{
        Applied, BlockEnv, BuildLimits, Built, Executed, apply_tx, build_block, execute_block,
    },
    governance::apply_genesis,
    multisig::{self, Proposal},
    state::{AccountRecord, AssetRecord, Overlay, StateKey, StateReader},
};
use verity_types::{
    AccountId, Algorithm, Amount, AssetCode, ChequeNumber, Genesis, Hash, Memo, Nonce, OrgId,
    PublicKey, Role, SecretKey, SignedTransaction, TierId, Transaction, TxBody,
    genesis::{
        GenesisAccount, GenesisAsset, GenesisOrganization, GenesisTier, GenesisValidator,
        TierLimits,
    },
    hash::sha256,
    tx::{InnerBody, Members},
};

/// 2026-01-01T00:00:00Z, the start of a UTC day.
pub const GENESIS_TIME_MS: u64 = 1_767_225_600_000;
/// One hour of block time.
pub const HOUR_MS: u64 = 3_600_000;
/// One UTC day of block time (the daily limit's day).
pub const DAY_MS: u64 = verity_ledger::accounts::DAY_MS;

/// Limits of the default `basic` tier, CNY: single payment, daily, balance.
pub const BASIC_CNY: (u64, u64, u64) = (1_000, 1_500, 5_000);
/// Limits of the default `basic` tier, USD.
pub const BASIC_USD: (u64, u64, u64) = (500, 800, 2_000);
/// Limits of the `verified` tier, CNY.
pub const VERIFIED_CNY: (u64, u64, u64) = (10_000, 20_000, 100_000);
/// Limits of the `verified` tier, USD.
pub const VERIFIED_USD: (u64, u64, u64) = (5_000, 8_000, 20_000);

/// An account with its key.
#[derive(Clone)]
pub struct Party {
    /// A name for messages.
    pub name: &'static str,
    /// Its secret key (Ed25519, derived from the name so runs are reproducible).
    pub key: SecretKey,
    /// Its public key.
    pub public: PublicKey,
    /// Its account id.
    pub id: AccountId,
}

impl Party {
    fn new(name: &'static str) -> Self {
        let key = SecretKey::from_bytes(Algorithm::Ed25519, &sha256(name.as_bytes()).0)
            .expect("any 32 bytes are an Ed25519 key");
        let public = key.public_key();
        Self {
            name,
            id: public.account_id(),
            public,
            key,
        }
    }
}

/// Everyone in the standard genesis.
pub struct Cast {
    /// Admin of `bank-a` (issuer of CNY), tier `institution`.
    pub bank_a: Party,
    /// Admin of `bank-b` (issuer of USD), tier `institution`.
    pub bank_b: Party,
    /// Admin of `regulator` (regulator role).
    pub regulator: Party,
    /// Admin of `ops`, an operator organization (neither issuer nor regulator).
    pub operator: Party,
    /// Basic tier; 3 000 CNY and 1 000 USD.
    pub alice: Party,
    /// Basic tier; 1 000 CNY.
    pub bob: Party,
    /// Basic tier; 500 CNY.
    pub carol: Party,
    /// Not in the genesis: a fresh account, basic tier by default.
    pub dave: Party,
    /// Verified tier; 20 000 CNY and 5 000 USD.
    pub erin: Party,
}

/// The standard cast.
pub fn cast() -> &'static Cast {
    static CAST: LazyLock<Cast> = LazyLock::new(|| Cast {
        bank_a: Party::new("bank-a"),
        bank_b: Party::new("bank-b"),
        regulator: Party::new("regulator"),
        operator: Party::new("operator"),
        alice: Party::new("alice"),
        bob: Party::new("bob"),
        carol: Party::new("carol"),
        dave: Party::new("dave"),
        erin: Party::new("erin"),
    });
    &CAST
}

/// CNY, issued by `bank-a`.
pub fn cny() -> AssetCode {
    "CNY".parse().unwrap()
}

/// USD, issued by `bank-b`.
pub fn usd() -> AssetCode {
    "USD".parse().unwrap()
}

/// A tier id.
pub fn tier(id: &str) -> TierId {
    id.parse().unwrap()
}

/// An organization id.
pub fn org(id: &str) -> OrgId {
    id.parse().unwrap()
}

fn limits((single, daily, balance): (u64, u64, u64)) -> TierLimits {
    TierLimits {
        single_payment: Some(Amount(single)),
        daily: Some(Amount(daily)),
        balance: Some(Amount(balance)),
    }
}

/// Builds the genesis of a test network, starting from the standard one.
pub struct GenesisBuilder {
    genesis: Genesis,
}

impl GenesisBuilder {
    /// Organizations `bank-a` (issuer of CNY), `bank-b` (issuer of USD), `regulator`, `ops`
    /// (operator); tiers `basic` (the default), `verified` and `institution` (no limits); the
    /// accounts of [Cast] with the balances documented there.
    pub fn standard() -> Self {
        let w = cast();
        let organization = |id: &str, name: &str, role: Role| GenesisOrganization {
            id: org(id),
            name: name.into(),
            roles: [role].into(),
        };
        let asset = |code: AssetCode, issuer: &str| GenesisAsset {
            name: code.to_string(),
            code,
            decimals: 2,
            issuer: org(issuer),
        };
        let genesis = Genesis {
            chain_name: "verity-ledger-tests".into(),
            genesis_time_ms: GENESIS_TIME_MS,
            validators: vec![GenesisValidator {
                name: "node0".into(),
                public_key: "11".repeat(32),
                organization: org("bank-a"),
            }],
            organizations: vec![
                organization("bank-a", "Bank A", Role::Issuer),
                organization("bank-b", "Bank B", Role::Issuer),
                organization("regulator", "Regulator", Role::Regulator),
                organization("ops", "Operator", Role::Operator),
            ],
            assets: vec![asset(cny(), "bank-a"), asset(usd(), "bank-b")],
            accounts: Vec::new(),
            tiers: vec![
                GenesisTier {
                    id: tier("basic"),
                    name: "Basic".into(),
                    limits: [(cny(), limits(BASIC_CNY)), (usd(), limits(BASIC_USD))].into(),
                },
                GenesisTier {
                    id: tier("verified"),
                    name: "Verified".into(),
                    limits: [(cny(), limits(VERIFIED_CNY)), (usd(), limits(VERIFIED_USD))].into(),
                },
                GenesisTier {
                    id: tier("institution"),
                    name: "Institution".into(),
                    limits: BTreeMap::new(),
                },
            ],
            default_tier: Some(tier("basic")),
        };
        Self { genesis }
            .member(&w.bank_a, "bank-a")
            .member(&w.bank_b, "bank-b")
            .member(&w.regulator, "regulator")
            .member(&w.operator, "ops")
            .tier(&w.bank_a, "institution")
            .tier(&w.bank_b, "institution")
            .tier(&w.regulator, "institution")
            .balance(&w.bank_a, &cny(), 10_000_000)
            .balance(&w.bank_b, &usd(), 10_000_000)
            .balance(&w.alice, &cny(), 3_000)
            .balance(&w.alice, &usd(), 1_000)
            .balance(&w.bob, &cny(), 1_000)
            .balance(&w.carol, &cny(), 500)
            .tier(&w.erin, "verified")
            .balance(&w.erin, &cny(), 20_000)
            .balance(&w.erin, &usd(), 5_000)
    }

    fn entry(&mut self, who: &Party) -> &mut GenesisAccount {
        let accounts = &mut self.genesis.accounts;
        let at = match accounts.iter().position(|a| a.account == who.id) {
            Some(at) => at,
            None => {
                accounts.push(GenesisAccount {
                    account: who.id,
                    organization: None,
                    admin: false,
                    balances: BTreeMap::new(),
                    tier: None,
                });
                accounts.len() - 1
            }
        };
        &mut accounts[at]
    }

    /// Makes `who` an admin account of organization `org_id`.
    pub fn member(mut self, who: &Party, org_id: &str) -> Self {
        let e = self.entry(who);
        e.organization = Some(org(org_id));
        e.admin = true;
        self
    }

    /// Sets `who`'s genesis balance of `asset`.
    pub fn balance(mut self, who: &Party, asset: &AssetCode, amount: u64) -> Self {
        self.entry(who)
            .balances
            .insert(asset.clone(), Amount(amount));
        self
    }

    /// Puts `who` in tier `id` at genesis.
    pub fn tier(mut self, who: &Party, id: &str) -> Self {
        self.entry(who).tier = Some(tier(id));
        self
    }

    /// The genesis, checked the way a node checks it.
    pub fn build(self) -> Genesis {
        self.genesis.validate().expect("the test genesis is valid");
        self.genesis
    }

    /// A chain started from this genesis.
    pub fn start(self) -> Chain {
        Chain::new(&self.build())
    }
}

/// Committed state as a sorted map, the way the store would hand it to the ledger.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct MapReader(pub BTreeMap<StateKey, Vec<u8>>);

impl StateReader for MapReader {
    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(key).cloned())
    }
}

/// Signature checks for blocks of transactions only.
pub fn checks() -> Checks<'static, VerifyAll, VerifyReadings> {
    Checks {
        txs: &VerifyAll,
        readings: &VerifyReadings,
    }
}

/// A ledger in memory: committed state, the last block's height and the next block's time.
pub struct Chain {
    /// Committed state.
    pub state: MapReader,
    /// The network's chain id (genesis hash).
    pub chain_id: Hash,
    /// Height of the last committed block (0: the genesis).
    pub height: u64,
    /// Block time of the next block, ms.
    pub time_ms: u64,
}

impl Chain {
    /// The standard network ([GenesisBuilder::standard]) at 10:00 UTC on its first day.
    pub fn standard() -> Self {
        GenesisBuilder::standard().start()
    }

    /// A network started from `genesis`, at 10:00 UTC on its first day.
    pub fn new(genesis: &Genesis) -> Self {
        let mut chain = Self {
            state: MapReader::default(),
            chain_id: genesis.chain_id(),
            height: 0,
            time_ms: genesis.genesis_time_ms + 10 * HOUR_MS,
        };
        let mut overlay = Overlay::new(&chain.state);
        apply_genesis(&mut overlay, genesis);
        let writes = overlay.into_writes();
        chain.commit(writes);
        chain.height = 0;
        chain
    }

    /// What the next block executes against.
    pub fn env(&self) -> BlockEnv {
        BlockEnv {
            chain_id: self.chain_id,
            height: self.height + 1,
            timestamp_ms: self.time_ms,
        }
    }

    /// Folds a block's writes into the committed state and moves to the next height.
    pub fn commit(&mut self, writes: BTreeMap<StateKey, Option<Vec<u8>>>) {
        for (key, value) in writes {
            match value {
                Some(v) => self.state.0.insert(key, v),
                None => self.state.0.remove(&key),
            };
        }
        self.height += 1;
    }

    /// Moves block time on.
    pub fn advance(&mut self, ms: u64) {
        self.time_ms += ms;
    }

    /// Sets the next block's time.
    pub fn set_time(&mut self, ms: u64) {
        self.time_ms = ms;
    }

    /// The UTC day of the next block.
    pub fn day(&self) -> u64 {
        self.time_ms / DAY_MS
    }

    /// `body` signed by `who` with its next nonce in the committed state.
    pub fn sign(&self, who: &Party, body: TxBody) -> SignedTransaction {
        self.sign_at(who, self.nonce(&who.id), body)
    }

    /// `body` signed by `who` with nonce `nonce` (for several transactions in one block).
    pub fn sign_at(&self, who: &Party, nonce: u64, body: TxBody) -> SignedTransaction {
        Transaction {
            signer: who.public,
            nonce: Nonce(nonce),
            body,
        }
        .sign(&who.key, &self.chain_id)
    }

    /// Executes a block strictly, as a validator does, and commits it.
    pub fn try_run(&mut self, txs: &[SignedTransaction]) -> Result<Executed, BlockError> {
        let env = self.env();
        let mut overlay = Overlay::new(&self.state);
        let executed = block_on(execute_block(&mut overlay, &env, txs, &[], checks()))?;
        let writes = overlay.into_writes();
        self.commit(writes);
        Ok(executed)
    }

    /// Executes and commits a block that must be valid.
    pub fn run(&mut self, txs: &[SignedTransaction]) -> Executed {
        self.try_run(txs)
            .unwrap_or_else(|e| panic!("block {} refused: {e}", self.height + 1))
    }

    /// Builds a block from candidates as a proposer does (leaving out refused ones), and
    /// commits it.
    pub fn build(&mut self, txs: Vec<SignedTransaction>) -> Built {
        let env = self.env();
        let limits = BuildLimits {
            max_txs: 1_000,
            max_readings: 0,
            max_body_bytes: 1 << 20,
        };
        let mut overlay = Overlay::new(&self.state);
        let built = block_on(build_block(
            &mut overlay,
            &env,
            txs,
            Vec::new(),
            limits,
            checks(),
        ))
        .expect("no storage failure in memory");
        let writes = overlay.into_writes();
        self.commit(writes);
        built
    }

    /// Applies one transaction in a block of its own. Whatever it wrote to the block's overlay is
    /// committed even when it is refused, so a refusal that leaves writes behind shows.
    pub fn try_tx(&mut self, tx: &SignedTransaction) -> Result<Applied, TxError> {
        let env = self.env();
        let mut overlay = Overlay::new(&self.state);
        let result = block_on(apply_tx(&mut overlay, &env, tx, &VerifyAll));
        let writes = overlay.into_writes();
        self.commit(writes);
        result
    }

    /// Signs and applies `body` as `who`, which must succeed.
    #[track_caller]
    pub fn ok(&mut self, who: &Party, body: TxBody) -> Applied {
        let kind = body.kind();
        let tx = self.sign(who, body);
        self.try_tx(&tx)
            .unwrap_or_else(|e| panic!("{kind} by {} refused: {e} ({})", who.name, e.code()))
    }

    /// Signs and applies `body` as `who`, which must be refused without changing any state.
    #[track_caller]
    pub fn refuse(&mut self, who: &Party, body: TxBody) -> TxError {
        let kind = body.kind();
        let before = self.state.clone();
        let tx = self.sign(who, body);
        let Err(e) = self.try_tx(&tx) else {
            panic!("{kind} by {} was accepted", who.name);
        };
        assert!(
            self.state == before,
            "refused {kind} ({}) changed state",
            e.code()
        );
        e
    }

    /// An account as committed (the empty account if never used).
    pub fn account(&self, id: &AccountId) -> AccountRecord {
        block_on(accounts::load(&Overlay::new(&self.state), id)).unwrap()
    }

    /// A balance as committed.
    pub fn balance(&self, id: &AccountId, asset: &AssetCode) -> u64 {
        self.account(id).balance(asset)
    }

    /// The nonce an account's next transaction must carry.
    pub fn nonce(&self, id: &AccountId) -> u64 {
        self.account(id).nonce
    }

    /// An asset record.
    pub fn asset(&self, code: &AssetCode) -> AssetRecord {
        block_on(accounts::load_asset(&Overlay::new(&self.state), code)).unwrap()
    }

    /// A cheque that must exist.
    #[track_caller]
    pub fn cheque(&self, id: &Hash) -> ChequeRecord {
        block_on(cheques::load(&Overlay::new(&self.state), id))
            .unwrap()
            .expect("the cheque exists")
    }

    /// A pending proposal of a multi-signature account.
    pub fn proposal(&self, account: &AccountId, id: &Hash) -> Option<Proposal> {
        block_on(multisig::load(&Overlay::new(&self.state), account, id)).unwrap()
    }

    /// `drawer` issues an undated cheque to `payee`; returns its id.
    #[track_caller]
    pub fn issue(&mut self, drawer: &Party, payee: &Party, asset: &AssetCode, amount: u64) -> Hash {
        self.issue_dated(drawer, payee, asset, amount, None, None)
    }

    /// `drawer` issues a cheque with dates to `payee`; returns its id.
    #[track_caller]
    pub fn issue_dated(
        &mut self,
        drawer: &Party,
        payee: &Party,
        asset: &AssetCode,
        amount: u64,
        valid_from_ms: Option<u64>,
        expires_ms: Option<u64>,
    ) -> Hash {
        let body = cheque_issue(payee.id, asset, amount, valid_from_ms, expires_ms);
        let tx = self.sign(drawer, body);
        let applied = self
            .try_tx(&tx)
            .unwrap_or_else(|e| panic!("issue refused: {e}"));
        assert!(
            applied.movements.is_empty(),
            "issuing a cheque moves no value"
        );
        verity_types::tx::cheque_id(&tx.id())
    }
}

/// A memo.
pub fn memo(s: &str) -> Memo {
    Memo::new(s).unwrap()
}

/// Transfer body.
pub fn transfer(to: AccountId, asset: &AssetCode, amount: u64) -> TxBody {
    TxBody::Transfer {
        to,
        asset: asset.clone(),
        amount: Amount(amount),
        memo: memo("test"),
    }
}

/// Mint body.
pub fn mint(to: AccountId, asset: &AssetCode, amount: u64) -> TxBody {
    TxBody::Mint {
        to,
        asset: asset.clone(),
        amount: Amount(amount),
        memo: memo("mint"),
    }
}

/// Burn body.
pub fn burn(asset: &AssetCode, amount: u64) -> TxBody {
    TxBody::Burn {
        asset: asset.clone(),
        amount: Amount(amount),
        memo: memo("burn"),
    }
}

/// SetTier body.
pub fn set_tier(account: AccountId, id: &str) -> TxBody {
    TxBody::SetTier {
        account,
        tier: tier(id),
    }
}

/// SetFrozen body that freezes.
pub fn freeze(account: AccountId, reason: &str) -> TxBody {
    TxBody::SetFrozen {
        account,
        frozen: true,
        reason: memo(reason),
    }
}

/// SetFrozen body that unfreezes.
pub fn unfreeze(account: AccountId) -> TxBody {
    TxBody::SetFrozen {
        account,
        frozen: false,
        reason: Memo::default(),
    }
}

/// ChequeIssue body.
pub fn cheque_issue(
    payee: AccountId,
    asset: &AssetCode,
    amount: u64,
    valid_from_ms: Option<u64>,
    expires_ms: Option<u64>,
) -> TxBody {
    TxBody::ChequeIssue {
        payee,
        asset: asset.clone(),
        amount: Amount(amount),
        valid_from_ms,
        expires_ms,
        memo: memo("invoice 7"),
    }
}

/// ChequeEndorse body.
pub fn endorse(cheque: Hash, to: AccountId) -> TxBody {
    TxBody::ChequeEndorse { cheque, to }
}

/// ChequePresent body.
pub fn present(cheque: Hash) -> TxBody {
    TxBody::ChequePresent { cheque }
}

/// ChequeStop body.
pub fn stop(cheque: Hash, reason: &str) -> TxBody {
    TxBody::ChequeStop {
        cheque,
        reason: memo(reason),
    }
}

/// ChequeCancel body.
pub fn cancel(cheque: Hash) -> TxBody {
    TxBody::ChequeCancel { cheque }
}

/// ChequePledge body.
pub fn pledge(cheque: Hash, to: AccountId) -> TxBody {
    TxBody::ChequePledge { cheque, to }
}

/// ChequeRelease body.
pub fn release(cheque: Hash) -> TxBody {
    TxBody::ChequeRelease { cheque }
}

/// PaperPresent body; the image hash is derived from the number and amount.
pub fn paper_present(
    number: &str,
    drawer: AccountId,
    payee: AccountId,
    asset: &AssetCode,
    amount: u64,
) -> TxBody {
    TxBody::PaperPresent {
        image_sha256: sha256(format!("scan of {number} for {amount}").as_bytes()),
        number: number.parse::<ChequeNumber>().unwrap(),
        drawer,
        payee,
        asset: asset.clone(),
        amount: Amount(amount),
    }
}

/// PaperDecide body.
pub fn paper_decide(cheque: Hash, honour: bool, reason: &str) -> TxBody {
    TxBody::PaperDecide {
        cheque,
        honour,
        reason: memo(reason),
    }
}

/// The id of paper cheque `number` drawn on `drawer`.
pub fn paper_id(drawer: &AccountId, number: &str) -> Hash {
    verity_types::tx::paper_cheque_id(drawer, &number.parse().unwrap())
}

/// MultisigCreate body.
pub fn multisig_create(members: &[&Party], threshold: u8) -> TxBody {
    TxBody::MultisigCreate {
        members: Members(members.iter().map(|p| p.id).collect()),
        threshold,
    }
}

/// MultisigPropose body.
pub fn propose(account: AccountId, body: TxBody) -> TxBody {
    TxBody::MultisigPropose {
        account,
        body: InnerBody(Box::new(body)),
    }
}

/// MultisigApprove body.
pub fn approve(account: AccountId, proposal: Hash) -> TxBody {
    TxBody::MultisigApprove { account, proposal }
}

/// MultisigCancel body.
pub fn withdraw(account: AccountId, proposal: Hash) -> TxBody {
    TxBody::MultisigCancel { account, proposal }
}
