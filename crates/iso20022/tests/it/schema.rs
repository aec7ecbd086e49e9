//! The message definitions camt.107.001.01, camt.108.001.01 and camt.109.001.01 as data, and
//! a checker that walks a rendered document against them.
//!
//! Every complex type a Verity message can reach is written out with all of its elements, in
//! schema order, with their multiplicities and types, as published by ISO 20022 (see
//! `tests/xsd/README.md`). Types Verity never writes (postal addresses, BICs, ...) are listed
//! by name only, and finding one in a message is an error. Simple types are checked with
//! their facets: text lengths in characters, `ISODate`, `ISODateTime`, decimal digits, the
//! currency code pattern, code lists.
//!
//! This checker and the XSDs under `tests/xsd` are two independent encodings of the same
//! definitions; the first needs no external tool.

use roxmltree::Node;

/// Unbounded `maxOccurs`.
const N: usize = usize::MAX;

/// One element of a sequence or choice.
struct El {
    name: &'static str,
    ty: &'static str,
    min: usize,
    max: usize,
}

/// An `El` literal, so that the tables below are promoted to `'static` constants.
macro_rules! el {
    ($name:expr, $ty:expr, $min:expr, $max:expr $(,)?) => {
        El {
            name: $name,
            ty: $ty,
            min: $min,
            max: $max,
        }
    };
}

/// What a type allows.
enum Def {
    Sequence(&'static [El]),
    Choice(&'static [El]),
    /// `ActiveCurrencyAndAmount`: a decimal with a required `Ccy` attribute.
    Amount,
    /// `SupplementaryDataEnvelope1`: any one element, validated laxly.
    Any,
    /// A string of `min..=max` characters.
    Text(usize, usize),
    /// `[0-9]{1,15}`.
    Numeric15,
    Date,
    DateTime,
    Codes(&'static [&'static str]),
    /// A type of the definition that Verity never writes.
    NotWritten,
}

fn def(ty: &str) -> Def {
    use Def::*;
    match ty {
        "Document107" => Sequence(&[el!(
            "ChqPresntmntNtfctn",
            "ChequePresentmentNotificationV01",
            1,
            1,
        )]),
        "Document108" => Sequence(&[el!(
            "ChqCxlOrStopReq",
            "ChequeCancellationOrStopRequestV01",
            1,
            1,
        )]),
        "Document109" => Sequence(&[el!(
            "ChqCxlOrStopRpt",
            "ChequeCancellationOrStopReportV01",
            1,
            1,
        )]),
        "ChequePresentmentNotificationV01" => Sequence(&[
            el!("GrpHdr", "GroupHeader103", 1, 1),
            el!("Chq", "Cheque13", 1, N),
            el!("SplmtryData", "SupplementaryData1", 0, N),
        ]),
        "ChequeCancellationOrStopRequestV01" => Sequence(&[
            el!("GrpHdr", "GroupHeader103", 1, 1),
            el!("Chq", "Cheque15", 1, N),
            el!("SplmtryData", "SupplementaryData1", 0, N),
        ]),
        "ChequeCancellationOrStopReportV01" => Sequence(&[
            el!("GrpHdr", "GroupHeader103", 1, 1),
            el!("Chq", "Cheque14", 1, N),
            el!("SplmtryData", "SupplementaryData1", 0, N),
        ]),
        "GroupHeader103" => Sequence(&[
            el!("MsgId", "Max35Text", 1, 1),
            el!("CreDtTm", "ISODateTime", 1, 1),
            el!("NbOfChqs", "Max15NumericText", 1, 1),
            el!("CtrlSum", "DecimalNumber", 0, 1),
        ]),
        "Cheque13" => Sequence(&[
            el!("InstrId", "Max35Text", 0, 1),
            el!("ChqNb", "Max35Text", 1, 1),
            el!("IsseDt", "ISODate", 1, 1),
            el!("StlDt", "ISODate", 0, 1),
            el!("Amt", "ActiveCurrencyAndAmount", 1, 1),
            el!("ValDt", "DateAndDateTime2Choice", 0, 1),
            el!("Pyer", "PartyIdentification135", 0, 1),
            el!("PyerAcct", "CashAccount40", 0, 1),
            el!(
                "DrwrAgt",
                "BranchAndFinancialInstitutionIdentification6",
                0,
                1,
            ),
            el!("DrwrAgtAcct", "CashAccount40", 0, 1),
            el!("Pyee", "PartyIdentification135", 1, 1),
            el!("PyeeAcct", "CashAccount40", 0, 1),
            el!("InstrForChqAgt", "InstructionForChequeAgent1", 0, N),
        ]),
        "Cheque15" => Sequence(&[
            el!("InstrId", "Max35Text", 0, 1),
            el!("OrgnlInstrId", "Max35Text", 0, 1),
            el!("ChqNb", "Max35Text", 1, 1),
            el!("IsseDt", "ISODate", 1, 1),
            el!("StlDt", "ISODate", 0, 1),
            el!("Amt", "ActiveCurrencyAndAmount", 1, 1),
            el!("FctvDt", "DateAndDateTime2Choice", 0, 1),
            el!(
                "DrwrAgt",
                "BranchAndFinancialInstitutionIdentification6",
                0,
                1,
            ),
            el!("DrwrAgtAcct", "CashAccount40", 0, 1),
            el!("Pyee", "PartyIdentification135", 0, 1),
            el!("PyeeAcct", "CashAccount40", 0, 1),
            el!("ChqCxlOrStopRsn", "ChequeCancellationReason1", 0, 1),
        ]),
        "Cheque14" => Sequence(&[
            el!("InstrId", "Max35Text", 0, 1),
            el!("OrgnlInstrId", "Max35Text", 0, 1),
            el!("ChqNb", "Max35Text", 1, 1),
            el!("IsseDt", "ISODate", 1, 1),
            el!("StlDt", "ISODate", 0, 1),
            el!("Amt", "ActiveCurrencyAndAmount", 1, 1),
            el!("FctvDt", "DateAndDateTime2Choice", 0, 1),
            el!(
                "DrwrAgt",
                "BranchAndFinancialInstitutionIdentification6",
                0,
                1,
            ),
            el!("DrwrAgtAcct", "CashAccount40", 0, 1),
            el!("Pyee", "PartyIdentification135", 0, 1),
            el!("PyeeAcct", "CashAccount40", 0, 1),
            el!("ChqCxlOrStopSts", "ChequeCancellationStatus1", 1, 1),
        ]),
        "DateAndDateTime2Choice" => {
            Choice(&[el!("Dt", "ISODate", 1, 1), el!("DtTm", "ISODateTime", 1, 1)])
        }
        "PartyIdentification135" => Sequence(&[
            el!("Nm", "Max140Text", 0, 1),
            el!("PstlAdr", "PostalAddress24", 0, 1),
            el!("Id", "Party38Choice", 0, 1),
            el!("CtryOfRes", "CountryCode", 0, 1),
            el!("CtctDtls", "Contact4", 0, 1),
        ]),
        "CashAccount40" => Sequence(&[
            el!("Id", "AccountIdentification4Choice", 0, 1),
            el!("Tp", "CashAccountType2Choice", 0, 1),
            el!("Ccy", "ActiveOrHistoricCurrencyCode", 0, 1),
            el!("Nm", "Max70Text", 0, 1),
            el!("Prxy", "ProxyAccountIdentification1", 0, 1),
        ]),
        "ProxyAccountIdentification1" => Sequence(&[
            el!("Tp", "ProxyAccountType1Choice", 0, 1),
            el!("Id", "Max2048Text", 1, 1),
        ]),
        "ProxyAccountType1Choice" => Choice(&[
            el!("Cd", "ExternalProxyAccountType1Code", 1, 1),
            el!("Prtry", "Max35Text", 1, 1),
        ]),
        "BranchAndFinancialInstitutionIdentification6" => Sequence(&[
            el!("FinInstnId", "FinancialInstitutionIdentification18", 1, 1),
            el!("BrnchId", "BranchData3", 0, 1),
        ]),
        "FinancialInstitutionIdentification18" => Sequence(&[
            el!("BICFI", "BICFIDec2014Identifier", 0, 1),
            el!("ClrSysMmbId", "ClearingSystemMemberIdentification2", 0, 1),
            el!("LEI", "LEIIdentifier", 0, 1),
            el!("Nm", "Max140Text", 0, 1),
            el!("PstlAdr", "PostalAddress24", 0, 1),
            el!("Othr", "GenericFinancialIdentification1", 0, 1),
        ]),
        "GenericFinancialIdentification1" => Sequence(&[
            el!("Id", "Max35Text", 1, 1),
            el!("SchmeNm", "FinancialIdentificationSchemeName1Choice", 0, 1),
            el!("Issr", "Max35Text", 0, 1),
        ]),
        "FinancialIdentificationSchemeName1Choice" => Choice(&[
            el!(
                "Cd",
                "ExternalFinancialInstitutionIdentification1Code",
                1,
                1,
            ),
            el!("Prtry", "Max35Text", 1, 1),
        ]),
        "InstructionForChequeAgent1" => Sequence(&[
            el!("Cd", "ExternalChequeAgentInstruction1Code", 0, 1),
            el!("InstrInf", "Max140Text", 0, 1),
        ]),
        "ChequeCancellationReason1" => Sequence(&[
            el!("Orgtr", "ChequePartyRole1Code", 0, 1),
            el!("Rsn", "ChequeCancellationReason1Choice", 1, 1),
            el!("AddtlInf", "Max140Text", 0, 1),
        ]),
        "ChequeCancellationReason1Choice" => Choice(&[
            el!("Cd", "ExternalChequeCancellationReason1Code", 1, 1),
            el!("Prtry", "Max35Text", 1, 1),
        ]),
        "ChequeCancellationStatus1" => Sequence(&[
            el!("Orgtr", "ChequePartyRole1Code", 0, 1),
            el!("Sts", "ChequeCancellationStatus1Choice", 1, 1),
            el!("AddtlInf", "Max140Text", 0, 1),
        ]),
        "ChequeCancellationStatus1Choice" => Choice(&[
            el!("Cd", "ExternalChequeCancellationStatus1Code", 1, 1),
            el!("Prtry", "Max35Text", 1, 1),
        ]),
        "SupplementaryData1" => Sequence(&[
            el!("PlcAndNm", "Max350Text", 0, 1),
            el!("Envlp", "SupplementaryDataEnvelope1", 1, 1),
        ]),
        "SupplementaryDataEnvelope1" => Any,
        "ActiveCurrencyAndAmount" => Amount,
        "Max15NumericText" => Numeric15,
        "Max35Text" => Text(1, 35),
        "Max140Text" => Text(1, 140),
        "Max350Text" => Text(1, 350),
        "Max2048Text" => Text(1, 2048),
        "ISODate" => Date,
        "ISODateTime" => DateTime,
        "ChequePartyRole1Code" => Codes(&["DWEA", "DWRA", "PAYE", "PAYR"]),
        // External code sets, as published by ISO 20022 (ExternalCodeSets).
        "ExternalChequeCancellationReason1Code" => Codes(&["CUST", "DUPL", "FRAD", "LOST", "NARR"]),
        "ExternalChequeCancellationStatus1Code" => Codes(&["ACCR", "RJCR"]),
        "ExternalProxyAccountType1Code"
        | "ExternalFinancialInstitutionIdentification1Code"
        | "ExternalChequeAgentInstruction1Code" => Text(1, 4),
        _ => NotWritten,
    }
}

/// Every way `root` departs from the definition of `kind` ("107", "108" or "109"), as
/// human-readable lines; empty when it conforms.
pub fn violations(root: Node<'_, '_>, kind: &str) -> Vec<String> {
    let ns = format!("urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.01");
    let mut errors = Vec::new();
    if root.tag_name().name() != "Document" || root.tag_name().namespace() != Some(ns.as_str()) {
        errors.push(format!(
            "root is {{{:?}}}{}, expected {{{ns}}}Document",
            root.tag_name().namespace(),
            root.tag_name().name()
        ));
        return errors;
    }
    Checker {
        ns: &ns,
        errors: &mut errors,
    }
    .check(root, &format!("Document{kind}"), "/Document");
    errors
}

struct Checker<'a> {
    ns: &'a str,
    errors: &'a mut Vec<String>,
}

impl Checker<'_> {
    fn error(&mut self, path: &str, what: impl std::fmt::Display) {
        self.errors.push(format!("{path}: {what}"));
    }

    fn check(&mut self, node: Node<'_, '_>, ty: &str, path: &str) {
        let children: Vec<Node<'_, '_>> = node.children().filter(|c| c.is_element()).collect();
        if node.tag_name().namespace() != Some(self.ns) {
            self.error(path, format!("namespace {:?}", node.tag_name().namespace()));
        }
        let attributes: Vec<&str> = node.attributes().map(|a| a.name()).collect();
        let allowed_attributes: &[&str] = if matches!(def(ty), Def::Amount) {
            &["Ccy"]
        } else {
            &[]
        };
        for a in &attributes {
            if !allowed_attributes.contains(a) {
                self.error(path, format!("unexpected attribute {a}"));
            }
        }
        match def(ty) {
            Def::Sequence(fields) => self.sequence(&children, fields, path),
            Def::Choice(options) => {
                if children.len() != 1 {
                    self.error(
                        path,
                        format!("a choice needs exactly one element, has {}", children.len()),
                    );
                }
                for child in children {
                    let name = child.tag_name().name();
                    match options.iter().find(|o| o.name == name) {
                        Some(o) => self.check(child, o.ty, &format!("{path}/{name}")),
                        None => self.error(path, format!("{name} is not an option of {ty}")),
                    }
                }
            }
            Def::Any => {
                if children.len() != 1 {
                    self.error(
                        path,
                        format!("the envelope needs one element, has {}", children.len()),
                    );
                }
            }
            Def::NotWritten => self.error(path, format!("{ty} is not expected in Verity messages")),
            simple => {
                if !children.is_empty() {
                    self.error(
                        path,
                        format!("{ty} is a simple type but has child elements"),
                    );
                }
                let text = node.text().unwrap_or_default();
                if let Err(why) = check_simple(&simple, node, text) {
                    self.error(path, format!("{ty} {text:?}: {why}"));
                }
            }
        }
    }

    /// Walks the children through the sequence in order: each field takes the run of children
    /// with its name; anything left over is out of order or not allowed.
    fn sequence(&mut self, children: &[Node<'_, '_>], fields: &[El], path: &str) {
        let mut at = 0;
        for field in fields {
            let start = at;
            while at < children.len() && children[at].tag_name().name() == field.name {
                at += 1;
            }
            let count = at - start;
            if count < field.min || count > field.max {
                let max = if field.max == N {
                    "n".to_string()
                } else {
                    field.max.to_string()
                };
                self.error(
                    path,
                    format!(
                        "{} occurs {count} times, allowed {}..{max}",
                        field.name, field.min
                    ),
                );
            }
            for child in &children[start..at] {
                self.check(*child, field.ty, &format!("{path}/{}", field.name));
            }
        }
        for child in &children[at..] {
            self.error(
                path,
                format!(
                    "{} is not allowed here (unknown, repeated or out of order)",
                    child.tag_name().name()
                ),
            );
        }
    }
}

fn check_simple(def: &Def, node: Node<'_, '_>, text: &str) -> Result<(), String> {
    match def {
        Def::Text(min, max) => {
            let chars = text.chars().count();
            if chars < *min || chars > *max {
                return Err(format!("{chars} characters, allowed {min}..{max}"));
            }
        }
        Def::Numeric15 => {
            if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err("not [0-9]{1,15}".into());
            }
        }
        Def::Codes(codes) => {
            if !codes.contains(&text) {
                return Err(format!("not one of {codes:?}"));
            }
        }
        Def::Date => check_date(text)?,
        Def::DateTime => check_date_time(text)?,
        Def::Amount => {
            let ccy = node.attribute("Ccy").ok_or("no Ccy attribute")?;
            if ccy.len() != 3 || !ccy.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!("Ccy {ccy:?} is not [A-Z]{{3,3}}"));
            }
            check_amount(text)?;
        }
        _ => unreachable!("not a simple type"),
    }
    Ok(())
}

/// `ActiveCurrencyAndAmount_SimpleType`: a non-negative `xs:decimal` with `fractionDigits` 5
/// and `totalDigits` 18. Verity writes plain digits with an optional fraction, never a sign or
/// exponent.
pub fn check_amount(text: &str) -> Result<(), String> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err("integer part is not digits".into());
    }
    if text.contains('.') && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
        return Err("fraction is not digits".into());
    }
    let frac_digits = frac.trim_end_matches('0').len();
    if frac_digits > 5 {
        return Err(format!("{frac_digits} fraction digits, at most 5"));
    }
    let total = int.trim_start_matches('0').len() + frac_digits;
    if total > 18 {
        return Err(format!("{total} digits, at most 18"));
    }
    Ok(())
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn check_date(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("not YYYY-MM-DD".into());
    }
    let year = number(&text[0..4])?;
    let month = number(&text[5..7])?;
    let day = number(&text[8..10])?;
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("month {month}")),
    };
    if day == 0 || day > days {
        return Err(format!("day {day} of month {month}"));
    }
    Ok(())
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`: the UTC form Verity writes (an `xs:dateTime` with milliseconds
/// and the `Z` zone).
pub fn check_date_time(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    if b.len() != 24
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return Err("not YYYY-MM-DDThh:mm:ss.sssZ".into());
    }
    check_date(&text[..10])?;
    let (h, m, s) = (
        number(&text[11..13])?,
        number(&text[14..16])?,
        number(&text[17..19])?,
    );
    number(&text[20..23])?;
    if h > 23 || m > 59 || s > 59 {
        return Err("time out of range".into());
    }
    Ok(())
}

fn number(digits: &str) -> Result<u32, String> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{digits:?} is not digits"));
    }
    digits.parse().map_err(|e| format!("{digits:?}: {e}"))
}
