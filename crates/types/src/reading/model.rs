//! The model [Reading::decode](super::Reading::decode) is checked against: the straightforward
//! decoder this crate had before the one-pass one, over `ciborium`'s value tree, with `coset`
//! building the `Sig_structure`. Test-only; `tests::one_pass_decoder_agrees_with_the_value_tree_model`
//! runs both on many valid and broken readings.

use super::{
    Algorithm, DeviceId, MAX_CBOR_DEPTH, MAX_READING_BYTES, MAX_RECORDS, MAX_VD_BYTES,
    MAX_VS_BYTES, ReadingError, Record, SENML_CBOR_CONTENT_FORMAT, SEQ_LABEL, SenmlValue,
    bad_header, bad_senml, malformed,
};
use crate::device::SEQ_LIMIT;
use ciborium::Value;

const COSE_SIGN1_TAG: u64 = 18;

/// What the model makes of a reading.
#[derive(Debug, PartialEq)]
pub(super) struct Decoded {
    pub device: DeviceId,
    pub algorithm: Algorithm,
    pub seq: u64,
    pub protected: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: crate::Signature,
    pub records: Vec<Record>,
}

/// The bytes the signature covers, built by `coset`.
pub(super) fn signed_bytes(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let protected = coset::ProtectedHeader {
        original_data: Some(protected.to_vec()),
        header: coset::Header::default(),
    };
    coset::sig_structure_data(
        coset::SignatureContext::CoseSign1,
        protected,
        None,
        &[],
        payload,
    )
}

pub(super) fn decode(bytes: &[u8]) -> Result<Decoded, ReadingError> {
    if bytes.len() > MAX_READING_BYTES {
        return Err(malformed(format!(
            "message is {} bytes, the limit is {MAX_READING_BYTES}",
            bytes.len()
        )));
    }
    well_formed(bytes, Some(COSE_SIGN1_TAG)).map_err(malformed)?;
    let value: Value = ciborium::from_reader(bytes).map_err(|e| malformed(format!("CBOR: {e}")))?;
    let Value::Tag(COSE_SIGN1_TAG, inner) = value else {
        return Err(malformed("not a tagged COSE_Sign1 (tag 18)"));
    };
    let Value::Array(items) = *inner else {
        return Err(malformed("COSE_Sign1 is not an array"));
    };
    let [protected, unprotected, payload, signature]: [Value; 4] = items
        .try_into()
        .map_err(|_| malformed("COSE_Sign1 must have 4 items"))?;
    let Value::Bytes(protected) = protected else {
        return Err(malformed("protected header is not a byte string"));
    };
    let Value::Map(unprotected) = unprotected else {
        return Err(malformed("unprotected header is not a map"));
    };
    let payload = match payload {
        Value::Bytes(p) => p,
        Value::Null => return Err(bad_header("detached payloads are not allowed")),
        _ => return Err(malformed("payload is not a byte string")),
    };
    let Value::Bytes(signature) = signature else {
        return Err(malformed("signature is not a byte string"));
    };
    let (algorithm, device, seq) = protected_header(&protected)?;
    if !unprotected.is_empty() {
        return Err(bad_header("the unprotected header must be an empty map"));
    }
    let signature: [u8; 64] = signature
        .as_slice()
        .try_into()
        .map_err(|_| malformed(format!("signature is {} bytes, not 64", signature.len())))?;
    let records = senml(&payload)?;
    Ok(Decoded {
        device,
        algorithm,
        seq,
        protected,
        payload,
        signature: crate::Signature(signature),
        records,
    })
}

/// Checks the protected header: exactly alg, content type, kid and seq with valid values.
fn protected_header(bytes: &[u8]) -> Result<(Algorithm, DeviceId, u64), ReadingError> {
    well_formed(bytes, None).map_err(|e| malformed(format!("protected header: {e}")))?;
    let value: Value =
        ciborium::from_reader(bytes).map_err(|e| malformed(format!("protected header: {e}")))?;
    let Value::Map(entries) = value else {
        return Err(bad_header("protected header is not a map"));
    };
    let (mut alg, mut content_type, mut kid, mut seq) = (None, None, None, None);
    for (label, value) in entries {
        let slot_taken = match int(&label) {
            Some(1) => alg
                .replace(match int(&value) {
                    Some(-8) => Algorithm::Ed25519,
                    Some(-7) => Algorithm::P256,
                    _ => return Err(bad_header("alg must be -8 (EdDSA) or -7 (ES256)")),
                })
                .is_some(),
            Some(3) => {
                if int(&value) != Some(SENML_CBOR_CONTENT_FORMAT as i128) {
                    return Err(bad_header("content type must be the integer 112"));
                }
                content_type.replace(()).is_some()
            }
            Some(4) => {
                let Value::Bytes(b) = value else {
                    return Err(bad_header("kid must be a byte string"));
                };
                let id = DeviceId::from_bytes(&b)
                    .map_err(|_| bad_header("kid is not a valid device id"))?;
                kid.replace(id).is_some()
            }
            Some(l) if l == SEQ_LABEL as i128 => match int(&value) {
                Some(s) if s >= 1 && s < SEQ_LIMIT as i128 => seq.replace(s as u64).is_some(),
                _ => return Err(bad_header("seq must be an integer with 1 <= seq < 2^53")),
            },
            _ => return Err(bad_header("unexpected label in the protected header")),
        };
        if slot_taken {
            return Err(bad_header("duplicate label in the protected header"));
        }
    }
    match (alg, content_type, kid, seq) {
        (Some(a), Some(()), Some(k), Some(s)) => Ok((a, k, s)),
        _ => Err(bad_header(
            "protected header must hold alg (1), content type (3), kid (4) and seq (-65537)",
        )),
    }
}

fn int(v: &Value) -> Option<i128> {
    match v {
        Value::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(i128::from(*i) as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

/// RFC 8428 §4.5.1: a name starts with a letter or digit, then letters, digits, `:./-_`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '/' | '-' | '_'))
}

/// Decodes and resolves a SenML pack (RFC 8428 §4.6) under PROTOCOL.md §2, as [Reading::decode]
/// does for its payload.
pub(super) fn senml(payload: &[u8]) -> Result<Vec<Record>, ReadingError> {
    well_formed(payload, None).map_err(|e| malformed(format!("payload: {e}")))?;
    let value: Value =
        ciborium::from_reader(payload).map_err(|e| malformed(format!("payload: {e}")))?;
    let Value::Array(pack) = value else {
        return Err(bad_senml("the pack is not an array"));
    };
    if pack.is_empty() || pack.len() > MAX_RECORDS {
        return Err(bad_senml(format!(
            "a pack holds 1 to {MAX_RECORDS} records, this one {}",
            pack.len()
        )));
    }
    let mut base_name = String::new();
    let mut base_time = 0.0;
    let mut base_unit: Option<String> = None;
    let mut base_value: Option<f64> = None;
    let mut out = Vec::with_capacity(pack.len());
    for (i, record) in pack.into_iter().enumerate() {
        let Value::Map(fields) = record else {
            return Err(bad_senml(format!("record {i} is not a map")));
        };
        let wrong = |what: &str| bad_senml(format!("record {i}: {what} has the wrong type"));
        let mut seen = 0u16;
        let (mut name, mut time, mut unit, mut value) = (None, None, None, None);
        let mut values = 0;
        for (label, v) in fields {
            let label = int(&label)
                .ok_or_else(|| bad_senml(format!("record {i}: labels must be integers")))?;
            let bit = match label {
                -5..=-2 => label + 5,
                0..=8 => label + 4,
                _ => return Err(bad_senml(format!("record {i}: unsupported label {label}"))),
            };
            if seen & (1 << bit) != 0 {
                return Err(bad_senml(format!(
                    "record {i}: label {label} appears twice"
                )));
            }
            seen |= 1 << bit;
            match label {
                -2 => base_name = text(v).ok_or_else(|| wrong("bn"))?,
                -3 => base_time = number(&v).ok_or_else(|| wrong("bt"))?,
                -4 => base_unit = Some(text(v).ok_or_else(|| wrong("bu"))?),
                -5 => base_value = Some(number(&v).ok_or_else(|| wrong("bv"))?),
                0 => name = Some(text(v).ok_or_else(|| wrong("n"))?),
                1 => unit = Some(text(v).ok_or_else(|| wrong("u"))?),
                2 => {
                    values += 1;
                    value = Some(SenmlValue::Number(number(&v).ok_or_else(|| wrong("v"))?));
                }
                3 => {
                    values += 1;
                    let s = text(v).ok_or_else(|| wrong("vs"))?;
                    if s.len() > MAX_VS_BYTES {
                        return Err(malformed(format!(
                            "record {i}: vs is {} bytes, the limit is {MAX_VS_BYTES}",
                            s.len()
                        )));
                    }
                    value = Some(SenmlValue::String(s));
                }
                4 => {
                    values += 1;
                    value = Some(SenmlValue::Bool(v.as_bool().ok_or_else(|| wrong("vb"))?));
                }
                8 => {
                    values += 1;
                    let Value::Bytes(d) = v else {
                        return Err(wrong("vd"));
                    };
                    if d.len() > MAX_VD_BYTES {
                        return Err(malformed(format!(
                            "record {i}: vd is {} bytes, the limit is {MAX_VD_BYTES}",
                            d.len()
                        )));
                    }
                    value = Some(SenmlValue::Data(d));
                }
                6 => time = Some(number(&v).ok_or_else(|| wrong("t"))?),
                // Sum (s) and update time (ut) are checked for type and kept in the signed bytes.
                _ => {
                    number(&v).ok_or_else(|| wrong("s/ut"))?;
                }
            }
        }
        let name = format!("{base_name}{}", name.unwrap_or_default());
        if !valid_name(&name) {
            return Err(bad_senml(format!("record {i}: invalid name {name:?}")));
        }
        let time = base_time + time.unwrap_or(0.0);
        if time == 0.0 || !time.is_finite() {
            return Err(bad_senml(format!("record {i}: a record must have a time")));
        }
        if time < 0.0 {
            return Err(bad_senml(format!(
                "record {i}: times are absolute seconds since the Unix epoch"
            )));
        }
        let value = match (value, values) {
            (Some(SenmlValue::Number(x)), 1) => {
                let resolved = x + base_value.unwrap_or(0.0);
                // Two finite numbers can sum to infinity; the resolved value must be finite too.
                if !resolved.is_finite() {
                    return Err(bad_senml(format!(
                        "record {i}: v plus bv is not a finite number"
                    )));
                }
                SenmlValue::Number(resolved)
            }
            (Some(v), 1) => v,
            _ => {
                return Err(bad_senml(format!(
                    "record {i}: needs exactly one of v, vs, vb, vd"
                )));
            }
        };
        out.push(Record {
            name,
            time,
            unit: unit.or_else(|| base_unit.clone()),
            value,
        });
    }
    Ok(out)
}

/// Checks that `bytes` hold exactly one well-formed CBOR item with definite lengths, nested at
/// most [MAX_CBOR_DEPTH] deep, with no tag except `root_tag` on the outermost item and only the
/// simple values false, true and null. Walks the item heads with `ciborium-ll`, iteratively.
fn well_formed(bytes: &[u8], root_tag: Option<u64>) -> Result<(), String> {
    use ciborium_ll::{Decoder, Header};
    let mut decoder = Decoder::from(bytes);
    // Items still owed by each open array or map.
    let mut open: Vec<usize> = Vec::new();
    let mut first = true;
    loop {
        let header = decoder
            .pull()
            .map_err(|_| "truncated or invalid CBOR".to_string())?;
        let at_root = std::mem::replace(&mut first, false);
        let children = match header {
            Header::Positive(_) | Header::Negative(_) | Header::Float(_) => 0,
            Header::Simple(20..=22) => 0,
            Header::Simple(s) => return Err(format!("simple value {s} is not allowed")),
            Header::Tag(t) if at_root && root_tag == Some(t) => {
                first = false;
                // The tagged item follows; it is the root's content, not a sibling.
                continue;
            }
            Header::Tag(t) => return Err(format!("tag {t} is not allowed here")),
            Header::Break
            | Header::Bytes(None)
            | Header::Text(None)
            | Header::Array(None)
            | Header::Map(None) => return Err("indefinite lengths are not allowed".into()),
            Header::Bytes(Some(n)) | Header::Text(Some(n)) => {
                if n > bytes.len() - decoder.offset() {
                    return Err("truncated string".into());
                }
                let mut skip = vec![0u8; n];
                ciborium_io::Read::read_exact(&mut decoder, &mut skip)
                    .map_err(|_| "truncated string".to_string())?;
                0
            }
            Header::Array(Some(n)) => n,
            Header::Map(Some(n)) => n.checked_mul(2).ok_or("map too large")?,
        };
        if children > bytes.len() - decoder.offset() {
            return Err("truncated array or map".into());
        }
        if children > 0 {
            if open.len() >= MAX_CBOR_DEPTH {
                return Err(format!("nested deeper than {MAX_CBOR_DEPTH}"));
            }
            open.push(children);
            continue;
        }
        // One item done: close every container it completes.
        loop {
            match open.last_mut() {
                None => {
                    return if decoder.offset() == bytes.len() {
                        Ok(())
                    } else {
                        Err("trailing bytes after the item".into())
                    };
                }
                Some(n) => {
                    *n -= 1;
                    if *n > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}
