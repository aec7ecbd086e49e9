//! Amounts in minor units as ISO 20022 `ActiveCurrencyAndAmount` values.
//!
//! The value is an `xs:decimal` with at most 18 digits in all and at most 5 after the point
//! (`ActiveCurrencyAndAmount_SimpleType`: `totalDigits` 18, `fractionDigits` 5, `minInclusive`
//! 0). It is built from the integer's decimal digits, never through a float, so it is exact.

use crate::ExportError;

/// The most digits after the decimal point (`fractionDigits`).
pub(crate) const FRACTION_DIGITS_MAX: usize = 5;
/// The most digits in all (`totalDigits`), not counting leading or trailing zeros.
pub(crate) const TOTAL_DIGITS_MAX: usize = 18;
/// The most decimals a cheque's minor unit may have.
pub(crate) const DECIMALS_MAX: u8 = 18;

/// `amount_minor` units of 10^-`decimals`, written with `decimals` digits after the point
/// (`1250`, 2 → `12.50`). Where `decimals` is more than 5, trailing zeros are dropped down to 5
/// digits; an amount that still needs more is refused rather than rounded.
pub(crate) fn render(amount_minor: u64, decimals: u8) -> Result<String, ExportError> {
    let refuse = |reason| ExportError::AmountNotRepresentable {
        amount_minor,
        decimals,
        reason,
    };
    if decimals > DECIMALS_MAX {
        return Err(ExportError::bad(
            "cheque.decimals",
            format!("{decimals} decimals, the most is {DECIMALS_MAX}"),
        ));
    }
    let places = usize::from(decimals);
    // At least one digit before the point: 5 with 2 decimals is "005" -> "0.05".
    let digits = format!("{amount_minor:0>width$}", width = places + 1);
    let (int_part, frac_full) = digits.split_at(digits.len() - places);
    let mut frac = frac_full;
    while frac.len() > FRACTION_DIGITS_MAX && frac.ends_with('0') {
        frac = &frac[..frac.len() - 1];
    }
    if frac.len() > FRACTION_DIGITS_MAX {
        return Err(refuse("more than 5 digits after the decimal point"));
    }
    let significant = int_part.trim_start_matches('0').len() + frac.trim_end_matches('0').len();
    if significant > TOTAL_DIGITS_MAX {
        return Err(refuse("more than 18 digits"));
    }
    Ok(if frac.is_empty() {
        int_part.to_string()
    } else {
        format!("{int_part}.{frac}")
    })
}

/// Whether `code` is shaped like an ISO 4217 alphabetic code (`ActiveCurrencyCode`:
/// `[A-Z]{3,3}`). Whether the code is currently assigned is left to the receiver: the list
/// changes, and an old copy here would refuse new currencies.
pub(crate) fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_currency_decimals() {
        assert_eq!(render(1250, 2).unwrap(), "12.50");
        assert_eq!(render(5, 2).unwrap(), "0.05");
        assert_eq!(render(0, 2).unwrap(), "0.00");
        assert_eq!(render(1000, 0).unwrap(), "1000");
        assert_eq!(render(1, 3).unwrap(), "0.001");
        assert_eq!(render(123_456, 5).unwrap(), "1.23456");
    }

    #[test]
    fn drops_zeros_beyond_five_decimals() {
        assert_eq!(render(100_000_000, 8).unwrap(), "1.00000");
        assert_eq!(render(1_234_500_000_000_000_000, 18).unwrap(), "1.23450");
        assert_eq!(render(0, 18).unwrap(), "0.00000");
    }

    #[test]
    fn refuses_what_would_need_rounding() {
        assert_eq!(
            render(123_456_789, 8),
            Err(ExportError::AmountNotRepresentable {
                amount_minor: 123_456_789,
                decimals: 8,
                reason: "more than 5 digits after the decimal point",
            })
        );
        assert!(render(1, 6).is_err());
    }

    #[test]
    fn refuses_more_than_eighteen_digits() {
        // 18 digits fit, 19 do not.
        assert_eq!(
            render(999_999_999_999_999_999, 0).unwrap(),
            "999999999999999999"
        );
        assert_eq!(
            render(999_999_999_999_999_999, 2).unwrap(),
            "9999999999999999.99"
        );
        assert!(render(1_000_000_000_000_000_000, 0).is_err());
        assert!(render(u64::MAX, 2).is_err());
        // Zeros after the last significant digit do not count: 10.00000 has two digits.
        assert_eq!(render(10_000_000_000_000_000_000, 18).unwrap(), "10.00000");
    }

    #[test]
    fn refuses_too_many_decimals() {
        assert!(matches!(
            render(1, 19),
            Err(ExportError::BadField {
                field: "cheque.decimals",
                ..
            })
        ));
    }

    #[test]
    fn currency_codes() {
        assert!(is_currency_code("USD"));
        assert!(is_currency_code("CNY"));
        for bad in ["", "US", "USDT", "usd", "US1", "ÜSD", "U D"] {
            assert!(!is_currency_code(bad), "{bad:?}");
        }
    }
}
