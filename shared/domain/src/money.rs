//! Costs: decimal amounts, never floating point.

use rust_decimal::Decimal;
use std::str::FromStr;

/// The most decimal places a cost may carry (fractions of a cent are kept, up to four).
pub const MAX_COST_SCALE: u32 = 4;

/// Parses a cost given as text: `""` (or blanks) means no cost, otherwise a non-negative decimal.
pub fn parse_cost_text(text: &str) -> Result<Option<Decimal>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let value = Decimal::from_str(trimmed)
        .or_else(|_| Decimal::from_scientific(trimmed))
        .map_err(|_| format!("must be a decimal number, not {trimmed:?}"))?;
    check_cost(value).map(Some)
}

/// Checks an amount: not negative, at most [`MAX_COST_SCALE`] decimal places.
pub fn check_cost(value: Decimal) -> Result<Decimal, String> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err("must not be negative".to_owned());
    }
    let normalized = value.normalize();
    if normalized.scale() > MAX_COST_SCALE {
        return Err(format!("must have at most {MAX_COST_SCALE} decimal places"));
    }
    Ok(normalized)
}

/// How a cost is shown: at least two decimal places, as Duoplane does ("5.00").
pub fn format_cost(value: Decimal) -> String {
    let mut shown = value.normalize();
    if shown.scale() < 2 {
        shown.rescale(2);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_text_is_no_cost() {
        assert_eq!(parse_cost_text(""), Ok(None));
        assert_eq!(parse_cost_text("  "), Ok(None));
    }

    #[test]
    fn numbers_parse_and_normalize() {
        assert_eq!(parse_cost_text("3.5").map(|c| c.map(format_cost)), Ok(Some("3.50".into())));
        assert_eq!(parse_cost_text("5").map(|c| c.map(format_cost)), Ok(Some("5.00".into())));
        assert_eq!(parse_cost_text("1.2345").map(|c| c.map(format_cost)), Ok(Some("1.2345".into())));
        assert_eq!(parse_cost_text("1.50000").map(|c| c.map(format_cost)), Ok(Some("1.50".into())));
    }

    #[test]
    fn bad_costs_are_refused() {
        assert!(parse_cost_text("abc").is_err());
        assert!(parse_cost_text("-1").is_err());
        assert!(parse_cost_text("0.00001").is_err());
        assert_eq!(parse_cost_text("-0"), Ok(Some(Decimal::ZERO)));
    }
}
