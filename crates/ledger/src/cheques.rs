//! Digital cheques and truncated paper cheques, with their whole lifecycle.
//!
//! A digital cheque is issued by its drawer to a payee (its first holder), may be endorsed to
//! other holders any number of times, pledged to a lender and released, stopped or cancelled by
//! the drawer, and finally presented by its holder (by the pledgee while pledged). Presentment
//! settles it at once: the value moves from the drawer to the presenter through the same
//! payment rules as a transfer (freeze, tier limits, funds), or the cheque is dishonoured with a
//! reason. Either way the cheque is then final.
//!
//! A truncated paper cheque is presented by a collecting bank (an account of an issuer
//! organization) by the SHA-256 of its scanned image, its number, drawer, payee and amount; its
//! id is derived from the drawer and number, so presenting the same paper twice is refused
//! whoever presents it. The paying bank (the issuer of the cheque's asset) then honours it —
//! clearing as a digital cheque does — or returns it with a reason.

use crate::{
    accounts::{self, TxCtx},
    error::TxError,
    governance,
    state::{Overlay, Staged, StateReader, cheque_key, read_string, write_string},
};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use verity_types::{
    AccountId, Amount, AssetCode, ChequeNumber, Hash, Memo, OrgId, Role,
    ids::MEMO_MAX_LEN,
    receipt::{Movement, MovementKind},
    tx::{cheque_id, paper_cheque_id},
};

/// Where a cheque is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChequeStatus {
    /// Issued and not yet presented (it may be endorsed, pledged, stopped or cancelled).
    Outstanding,
    /// A paper cheque presented by the collecting bank, awaiting the paying bank.
    Presented,
    /// Paid: the value moved from the drawer to the presenter. Final.
    Cleared,
    /// Presented and not paid, for a [Dishonour] reason. Final.
    Dishonoured,
    /// Cancelled by the drawer. Final.
    Cancelled,
}

impl ChequeStatus {
    fn tag(self) -> u8 {
        self as u8
    }
    fn from_tag(t: u8) -> Result<Self, CodecError> {
        Ok(match t {
            0 => Self::Outstanding,
            1 => Self::Presented,
            2 => Self::Cleared,
            3 => Self::Dishonoured,
            4 => Self::Cancelled,
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

/// Why a presented cheque was not paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dishonour {
    /// The drawer's balance was too low.
    InsufficientFunds,
    /// The drawer had stopped payment.
    Stopped,
    /// Presented at or after its expiry.
    Expired,
    /// Presented before its valid-from time.
    NotYetValid,
    /// The drawer or the presenter is frozen.
    Frozen,
    /// Paying it would break a tier limit of the drawer or the presenter.
    OverLimit,
    /// The paying bank returned a paper cheque (its reason is in the cheque's note).
    Returned,
}

impl Dishonour {
    /// The stable reason code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InsufficientFunds => "insufficient_funds",
            Self::Stopped => "stopped",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Frozen => "frozen",
            Self::OverLimit => "over_limit",
            Self::Returned => "returned",
        }
    }
    fn tag(self) -> u8 {
        self as u8
    }
    fn from_tag(t: u8) -> Result<Self, CodecError> {
        Ok(match t {
            0 => Self::InsufficientFunds,
            1 => Self::Stopped,
            2 => Self::Expired,
            3 => Self::NotYetValid,
            4 => Self::Frozen,
            5 => Self::OverLimit,
            6 => Self::Returned,
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

/// Every dishonour reason code, for documentation and tests.
pub const DISHONOUR_CODES: &[&str] = &[
    "insufficient_funds",
    "stopped",
    "expired",
    "not_yet_valid",
    "frozen",
    "over_limit",
    "returned",
];

/// What a truncated paper cheque adds to a cheque.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaperInfo {
    /// SHA-256 of the scanned image.
    pub image_sha256: Hash,
    /// The number printed on it.
    pub number: ChequeNumber,
    /// The collecting bank.
    pub collecting: OrgId,
}

/// A cheque as the ledger keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChequeRecord {
    /// Its id.
    pub id: Hash,
    /// The account it is drawn on.
    pub drawer: AccountId,
    /// Its first holder.
    pub payee: AccountId,
    /// Its current holder.
    pub holder: AccountId,
    /// Asset.
    pub asset: AssetCode,
    /// Amount, minor units.
    pub amount: u64,
    /// Not payable before, ms.
    pub valid_from_ms: Option<u64>,
    /// Not payable from, ms.
    pub expires_ms: Option<u64>,
    /// Free text.
    pub memo: String,
    /// Height and block time it was issued (or the paper presented).
    pub issued_height: u64,
    /// Block time it was issued, ms.
    pub issued_ms: u64,
    /// How many times it was endorsed.
    pub endorsements: u32,
    /// The lender it is pledged to.
    pub pledgee: Option<AccountId>,
    /// The drawer's reason, if payment is stopped.
    pub stopped: Option<String>,
    /// Where it is in its lifecycle.
    pub status: ChequeStatus,
    /// Why it was dishonoured.
    pub dishonour: Option<Dishonour>,
    /// The paying bank's reason for returning a paper cheque.
    pub note: Option<String>,
    /// Who presented it.
    pub presented_by: Option<AccountId>,
    /// Height at which it became final.
    pub final_height: Option<u64>,
    /// Set for a truncated paper cheque.
    pub paper: Option<PaperInfo>,
}

impl ChequeRecord {
    /// The state the API shows: `issued`, `endorsed`, `pledged`, `stopped`, `presented`,
    /// `cleared`, `dishonoured` or `cancelled`.
    pub fn state(&self) -> &'static str {
        match self.status {
            ChequeStatus::Cleared => "cleared",
            ChequeStatus::Dishonoured => "dishonoured",
            ChequeStatus::Cancelled => "cancelled",
            ChequeStatus::Presented => "presented",
            ChequeStatus::Outstanding if self.stopped.is_some() => "stopped",
            ChequeStatus::Outstanding if self.pledgee.is_some() => "pledged",
            ChequeStatus::Outstanding if self.endorsements > 0 => "endorsed",
            ChequeStatus::Outstanding => "issued",
        }
    }

    /// Whether nothing can happen to it any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status,
            ChequeStatus::Cleared | ChequeStatus::Dishonoured | ChequeStatus::Cancelled
        )
    }
}

/// Every cheque state name, for documentation and queries.
pub const CHEQUE_STATES: &[&str] = &[
    "issued",
    "endorsed",
    "pledged",
    "stopped",
    "presented",
    "cleared",
    "dishonoured",
    "cancelled",
];

impl Write for ChequeRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.drawer.write(buf);
        self.payee.write(buf);
        self.holder.write(buf);
        self.asset.write(buf);
        buf.put_u64(self.amount);
        self.valid_from_ms.write(buf);
        self.expires_ms.write(buf);
        write_string(&self.memo, buf);
        buf.put_u64(self.issued_height);
        buf.put_u64(self.issued_ms);
        buf.put_u32(self.endorsements);
        self.pledgee.write(buf);
        self.stopped.clone().map(|s| s.into_bytes()).write(buf);
        buf.put_u8(self.status.tag());
        self.dishonour.map(Dishonour::tag).write(buf);
        self.note.clone().map(|s| s.into_bytes()).write(buf);
        self.presented_by.write(buf);
        self.final_height.write(buf);
        match &self.paper {
            Some(p) => {
                buf.put_u8(1);
                p.image_sha256.write(buf);
                p.number.write(buf);
                p.collecting.write(buf);
            }
            None => buf.put_u8(0),
        }
    }
}

fn opt_bytes_size(s: &Option<String>) -> usize {
    // Option<Vec<u8>>: presence byte, then a varint length and the bytes.
    s.clone().map(|s| s.into_bytes()).encode_size()
}

impl EncodeSize for ChequeRecord {
    fn encode_size(&self) -> usize {
        32 + 20 * 3
            + self.asset.encode_size()
            + 8
            + self.valid_from_ms.encode_size()
            + self.expires_ms.encode_size()
            + 2
            + self.memo.len()
            + 8
            + 8
            + 4
            + self.pledgee.encode_size()
            + opt_bytes_size(&self.stopped)
            + 1
            + self.dishonour.map(Dishonour::tag).encode_size()
            + opt_bytes_size(&self.note)
            + self.presented_by.encode_size()
            + self.final_height.encode_size()
            + 1
            + self.paper.as_ref().map_or(0, |p| {
                32 + p.number.encode_size() + p.collecting.encode_size()
            })
    }
}

fn read_opt_text(buf: &mut impl Buf) -> Result<Option<String>, CodecError> {
    let range = commonware_codec::RangeCfg::from(..=MEMO_MAX_LEN);
    let bytes = Option::<Vec<u8>>::read_cfg(buf, &(range, ()))?;
    bytes
        .map(|b| String::from_utf8(b).map_err(|_| CodecError::Invalid("text", "not UTF-8")))
        .transpose()
}

impl Read for ChequeRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            id: Hash::read(buf)?,
            drawer: AccountId::read(buf)?,
            payee: AccountId::read(buf)?,
            holder: AccountId::read(buf)?,
            asset: AssetCode::read(buf)?,
            amount: u64::read(buf)?,
            valid_from_ms: Option::<u64>::read(buf)?,
            expires_ms: Option::<u64>::read(buf)?,
            memo: read_string(buf, MEMO_MAX_LEN)?,
            issued_height: u64::read(buf)?,
            issued_ms: u64::read(buf)?,
            endorsements: u32::read(buf)?,
            pledgee: Option::<AccountId>::read(buf)?,
            stopped: read_opt_text(buf)?,
            status: ChequeStatus::from_tag(u8::read(buf)?)?,
            dishonour: Option::<u8>::read(buf)?
                .map(Dishonour::from_tag)
                .transpose()?,
            note: read_opt_text(buf)?,
            presented_by: Option::<AccountId>::read(buf)?,
            final_height: Option::<u64>::read(buf)?,
            paper: match u8::read(buf)? {
                0 => None,
                1 => Some(PaperInfo {
                    image_sha256: Hash::read(buf)?,
                    number: ChequeNumber::read(buf)?,
                    collecting: OrgId::read(buf)?,
                }),
                t => return Err(CodecError::InvalidEnum(t)),
            },
        })
    }
}

/// One step of a cheque's lifecycle, as the index records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChequeEvent {
    /// The cheque.
    pub cheque: Hash,
    /// `issue`, `endorse`, `pledge`, `release`, `stop`, `cancel`, `present`,
    /// `paper_present`, `honour` or `return`.
    pub action: &'static str,
    /// The acting account.
    pub by: AccountId,
    /// The account it went to (endorsee, pledgee), if any.
    pub to: Option<AccountId>,
    /// For a presentment or an honoured paper cheque: `cleared` or `dishonoured:<reason>`; for
    /// a returned paper cheque: `dishonoured:returned: <reason>`; for a stop: the reason given.
    pub detail: String,
}

/// A cheque operation's result: the lifecycle event, the movements of value, and the outcome
/// its receipt records.
pub struct ChequeOutcome {
    /// The event.
    pub event: ChequeEvent,
    /// Value moved (only when it cleared).
    pub movements: Vec<Movement>,
    /// `ok`, or `dishonoured:<reason>`.
    pub outcome: String,
}

impl ChequeOutcome {
    fn plain(event: ChequeEvent) -> Self {
        Self {
            event,
            movements: Vec::new(),
            outcome: verity_types::receipt::OUTCOME_OK.to_string(),
        }
    }
}

/// Reads a cheque.
pub async fn load<R: StateReader>(
    state: &Overlay<'_, R>,
    id: &Hash,
) -> Result<Option<ChequeRecord>, TxError> {
    state.get(&cheque_key(id)).await
}

async fn load_existing<R: StateReader>(
    state: &Overlay<'_, R>,
    staged: &Staged,
    id: &Hash,
) -> Result<ChequeRecord, TxError> {
    staged
        .get(state, &cheque_key(id))
        .await?
        .ok_or_else(|| TxError::UnknownCheque(id.to_string()))
}

/// A frozen account can neither pay nor give away a cheque it holds (endorse or pledge it).
fn not_frozen(tx: &TxCtx<'_>) -> Result<(), TxError> {
    match &tx.sender_record.frozen {
        Some(reason) => Err(TxError::SenderFrozen {
            account: tx.sender,
            reason: reason.clone(),
        }),
        None => Ok(()),
    }
}

fn refuse(c: &ChequeRecord, reason: impl Into<String>) -> TxError {
    TxError::ChequeState {
        cheque: c.id.to_string(),
        state: c.state(),
        reason: reason.into(),
    }
}

fn must_be_outstanding(c: &ChequeRecord, what: &str) -> Result<(), TxError> {
    if c.status != ChequeStatus::Outstanding {
        return Err(refuse(c, format!("it cannot be {what} any more")));
    }
    Ok(())
}

fn event(c: &ChequeRecord, action: &'static str, tx: &TxCtx<'_>) -> ChequeEvent {
    ChequeEvent {
        cheque: c.id,
        action,
        by: tx.sender,
        to: None,
        detail: String::new(),
    }
}

/// Issues a cheque drawn on the sender.
#[allow(clippy::too_many_arguments)]
pub async fn issue<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    height: u64,
    payee: &AccountId,
    asset: &AssetCode,
    amount: Amount,
    valid_from_ms: Option<u64>,
    expires_ms: Option<u64>,
    memo: &Memo,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    if amount.0 == 0 {
        return Err(TxError::InvalidAmount("amount must be more than zero"));
    }
    if *payee == tx.sender {
        return Err(TxError::SelfTransfer(*payee));
    }
    accounts::load_asset(state, asset).await?;
    if let Some(reason) = &tx.sender_record.frozen {
        return Err(TxError::SenderFrozen {
            account: tx.sender,
            reason: reason.clone(),
        });
    }
    if let (Some(from), Some(until)) = (valid_from_ms, expires_ms)
        && until <= from
    {
        return Err(TxError::ChequeDates("expiry must be after valid-from"));
    }
    if expires_ms.is_some_and(|e| e <= tx.time_ms) {
        return Err(TxError::ChequeDates("the expiry is already past"));
    }
    let id = cheque_id(&tx.id);
    let record = ChequeRecord {
        id,
        drawer: tx.sender,
        payee: *payee,
        holder: *payee,
        asset: asset.clone(),
        amount: amount.0,
        valid_from_ms,
        expires_ms,
        memo: memo.as_str().to_string(),
        issued_height: height,
        issued_ms: tx.time_ms,
        endorsements: 0,
        pledgee: None,
        stopped: None,
        status: ChequeStatus::Outstanding,
        dishonour: None,
        note: None,
        presented_by: None,
        final_height: None,
        paper: None,
    };
    staged.put(cheque_key(&id), &record);
    let mut ev = event(&record, "issue", tx);
    ev.to = Some(*payee);
    Ok(ChequeOutcome::plain(ev))
}

/// Loads a cheque its holder hands to `to` (endorses or pledges): outstanding, signed by the
/// holder, who is not frozen, neither pledged nor stopped, and `to` is neither the holder nor
/// the drawer. Checked in this order.
async fn hand_over<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &Hash,
    to: &AccountId,
    staged: &Staged,
    verb: &str,
) -> Result<ChequeRecord, TxError> {
    let c = load_existing(state, staged, id).await?;
    must_be_outstanding(&c, verb)?;
    if tx.sender != c.holder {
        return Err(TxError::Unauthorized(format!(
            "only the holder {} may have cheque {id} {verb}",
            c.holder
        )));
    }
    not_frozen(tx)?;
    if c.pledgee.is_some() {
        return Err(refuse(&c, format!("a pledged cheque cannot be {verb}")));
    }
    if c.stopped.is_some() {
        return Err(refuse(&c, "payment is stopped"));
    }
    if *to == c.holder || *to == c.drawer {
        return Err(refuse(
            &c,
            format!("it can be {verb} to neither its holder nor its drawer"),
        ));
    }
    Ok(c)
}

/// Endorses a cheque to `to`; the holder may.
pub async fn endorse<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &Hash,
    to: &AccountId,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let mut c = hand_over(state, tx, id, to, staged, "endorsed").await?;
    c.holder = *to;
    c.endorsements += 1;
    staged.put(cheque_key(id), &c);
    let mut ev = event(&c, "endorse", tx);
    ev.to = Some(*to);
    Ok(ChequeOutcome::plain(ev))
}

/// Pledges a cheque to the lender `to`; the holder may.
pub async fn pledge<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &Hash,
    to: &AccountId,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let mut c = hand_over(state, tx, id, to, staged, "pledged").await?;
    c.pledgee = Some(*to);
    staged.put(cheque_key(id), &c);
    let mut ev = event(&c, "pledge", tx);
    ev.to = Some(*to);
    Ok(ChequeOutcome::plain(ev))
}

/// Releases a pledge; the pledgee may.
pub async fn release<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &Hash,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let mut c = load_existing(state, staged, id).await?;
    must_be_outstanding(&c, "released")?;
    match c.pledgee {
        None => return Err(refuse(&c, "it is not pledged")),
        Some(p) if p != tx.sender => {
            return Err(TxError::Unauthorized(format!(
                "only the pledgee {p} may release cheque {id}"
            )));
        }
        Some(_) => {}
    }
    c.pledgee = None;
    staged.put(cheque_key(id), &c);
    Ok(ChequeOutcome::plain(event(&c, "release", tx)))
}

/// Stops payment; the drawer may, before presentment.
pub async fn stop<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    id: &Hash,
    reason: &Memo,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let mut c = load_existing(state, staged, id).await?;
    must_be_outstanding(&c, "stopped")?;
    if tx.sender != c.drawer {
        return Err(TxError::Unauthorized(format!(
            "only the drawer {} may stop cheque {id}",
            c.drawer
        )));
    }
    if c.stopped.is_some() {
        return Err(refuse(&c, "payment is already stopped"));
    }
    c.stopped = Some(reason.as_str().to_string());
    staged.put(cheque_key(id), &c);
    let mut ev = event(&c, "stop", tx);
    ev.detail = reason.as_str().to_string();
    Ok(ChequeOutcome::plain(ev))
}

/// Cancels a cheque still held by its first payee; the drawer may.
pub async fn cancel<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    height: u64,
    id: &Hash,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let mut c = load_existing(state, staged, id).await?;
    must_be_outstanding(&c, "cancelled")?;
    if tx.sender != c.drawer {
        return Err(TxError::Unauthorized(format!(
            "only the drawer {} may cancel cheque {id}",
            c.drawer
        )));
    }
    if c.endorsements > 0 || c.holder != c.payee {
        return Err(refuse(
            &c,
            "it has been endorsed; only its first payee's can be cancelled",
        ));
    }
    if c.pledgee.is_some() {
        return Err(refuse(&c, "a pledged cheque cannot be cancelled"));
    }
    c.status = ChequeStatus::Cancelled;
    c.final_height = Some(height);
    staged.put(cheque_key(id), &c);
    Ok(ChequeOutcome::plain(event(&c, "cancel", tx)))
}

/// Pays a cheque from its drawer to `to`, all or nothing: the movements, or why it is
/// dishonoured. Storage failures are errors.
async fn settle<R: StateReader>(
    state: &Overlay<'_, R>,
    staged: &mut Staged,
    time_ms: u64,
    c: &ChequeRecord,
    to: &AccountId,
) -> Result<Result<Vec<Movement>, Dishonour>, TxError> {
    let mark = staged.0.len();
    let attempt = async {
        let from_after =
            accounts::pay(state, staged, time_ms, &c.drawer, &c.asset, c.amount).await?;
        let to_after = accounts::receive(state, staged, to, &c.asset, c.amount).await?;
        Ok::<_, TxError>((from_after, to_after))
    }
    .await;
    match attempt {
        Ok((from_after, to_after)) => {
            let memo = match &c.paper {
                Some(p) => format!("paper cheque {}", p.number),
                None => c.memo.clone(),
            };
            Ok(Ok(accounts::payment_movements(
                c.drawer,
                from_after,
                *to,
                to_after,
                &c.asset,
                c.amount,
                MovementKind::Cheque,
                &memo,
            )))
        }
        Err(e) => {
            staged.0.truncate(mark);
            Ok(Err(match e {
                TxError::State(_) => return Err(e),
                TxError::InsufficientFunds { .. } => Dishonour::InsufficientFunds,
                TxError::SenderFrozen { .. } | TxError::RecipientFrozen { .. } => Dishonour::Frozen,
                _ => Dishonour::OverLimit,
            }))
        }
    }
}

fn finish(
    c: &mut ChequeRecord,
    height: u64,
    result: Result<Vec<Movement>, Dishonour>,
) -> (Vec<Movement>, String, String) {
    c.final_height = Some(height);
    match result {
        Ok(movements) => {
            c.status = ChequeStatus::Cleared;
            (
                movements,
                verity_types::receipt::OUTCOME_OK.to_string(),
                "cleared".to_string(),
            )
        }
        Err(reason) => {
            c.status = ChequeStatus::Dishonoured;
            c.dishonour = Some(reason);
            let code = format!("dishonoured:{}", reason.code());
            (Vec::new(), code.clone(), code)
        }
    }
}

/// Presents a digital cheque; its holder may (its pledgee, while pledged). It clears or is
/// dishonoured, and is final either way.
pub async fn present<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    height: u64,
    id: &Hash,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let mut c = load_existing(state, staged, id).await?;
    must_be_outstanding(&c, "presented")?;
    let presenter = c.pledgee.unwrap_or(c.holder);
    if tx.sender != presenter {
        let who = if c.pledgee.is_some() {
            "the pledgee"
        } else {
            "the holder"
        };
        return Err(TxError::Unauthorized(format!(
            "only {who} {presenter} may present cheque {id}"
        )));
    }
    let result = if c.stopped.is_some() {
        Err(Dishonour::Stopped)
    } else if c.valid_from_ms.is_some_and(|t| tx.time_ms < t) {
        Err(Dishonour::NotYetValid)
    } else if c.expires_ms.is_some_and(|t| tx.time_ms >= t) {
        Err(Dishonour::Expired)
    } else {
        settle(state, staged, tx.time_ms, &c, &presenter).await?
    };
    c.presented_by = Some(tx.sender);
    let (movements, outcome, detail) = finish(&mut c, height, result);
    staged.put(cheque_key(id), &c);
    let mut ev = event(&c, "present", tx);
    ev.detail = detail;
    Ok(ChequeOutcome {
        event: ev,
        movements,
        outcome,
    })
}

async fn bank_of<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
) -> Result<Option<OrgId>, TxError> {
    match &tx.sender_record.organization {
        Some(org) if governance::has_role(state, org, Role::Issuer).await? => Ok(Some(org.clone())),
        _ => Ok(None),
    }
}

/// A collecting bank presents a truncated paper cheque.
#[allow(clippy::too_many_arguments)]
pub async fn paper_present<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    height: u64,
    image_sha256: &Hash,
    number: &ChequeNumber,
    drawer: &AccountId,
    payee: &AccountId,
    asset: &AssetCode,
    amount: Amount,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let Some(bank) = bank_of(state, tx).await? else {
        return Err(TxError::Unauthorized(
            "only an account of a bank (an issuer organization) may present paper cheques".into(),
        ));
    };
    if amount.0 == 0 {
        return Err(TxError::InvalidAmount("amount must be more than zero"));
    }
    if drawer == payee {
        return Err(TxError::SelfTransfer(*payee));
    }
    accounts::load_asset(state, asset).await?;
    let id = paper_cheque_id(drawer, number);
    if let Some(first) = staged
        .get::<ChequeRecord, _>(state, &cheque_key(&id))
        .await?
    {
        return Err(TxError::DuplicatePresentment {
            drawer: *drawer,
            number: number.to_string(),
            cheque: first.id.to_string(),
        });
    }
    let record = ChequeRecord {
        id,
        drawer: *drawer,
        payee: *payee,
        holder: *payee,
        asset: asset.clone(),
        amount: amount.0,
        valid_from_ms: None,
        expires_ms: None,
        memo: String::new(),
        issued_height: height,
        issued_ms: tx.time_ms,
        endorsements: 0,
        pledgee: None,
        stopped: None,
        status: ChequeStatus::Presented,
        dishonour: None,
        note: None,
        presented_by: Some(tx.sender),
        final_height: None,
        paper: Some(PaperInfo {
            image_sha256: *image_sha256,
            number: number.clone(),
            collecting: bank,
        }),
    };
    staged.put(cheque_key(&id), &record);
    let mut ev = event(&record, "paper_present", tx);
    ev.to = Some(*payee);
    Ok(ChequeOutcome::plain(ev))
}

/// The paying bank (an account of the issuer of the cheque's asset) honours a presented paper
/// cheque — it then clears or is dishonoured as a digital cheque — or returns it with a reason.
pub async fn paper_decide<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &TxCtx<'_>,
    height: u64,
    id: &Hash,
    honour: bool,
    reason: &Memo,
    staged: &mut Staged,
) -> Result<ChequeOutcome, TxError> {
    let mut c = load_existing(state, staged, id).await?;
    if c.paper.is_none() {
        return Err(refuse(&c, "it is not a paper cheque"));
    }
    if c.status != ChequeStatus::Presented {
        return Err(refuse(&c, "it was already decided"));
    }
    let asset = accounts::load_asset(state, &c.asset).await?;
    if bank_of(state, tx).await?.as_ref() != Some(&asset.issuer) {
        return Err(TxError::Unauthorized(format!(
            "only the paying bank {} may honour or return this cheque",
            asset.issuer
        )));
    }
    let result = if honour {
        let payee = c.holder;
        settle(state, staged, tx.time_ms, &c, &payee).await?
    } else {
        if reason.as_str().is_empty() {
            return Err(refuse(&c, "returning a cheque needs a reason"));
        }
        c.note = Some(reason.as_str().to_string());
        Err(Dishonour::Returned)
    };
    let (movements, outcome, detail) = finish(&mut c, height, result);
    staged.put(cheque_key(id), &c);
    let mut ev = event(&c, if honour { "honour" } else { "return" }, tx);
    ev.detail = if honour {
        detail
    } else {
        format!("{detail}: {}", reason.as_str())
    };
    Ok(ChequeOutcome {
        event: ev,
        movements,
        outcome,
    })
}
