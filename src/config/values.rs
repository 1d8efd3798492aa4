//! Parsers for the value types directives share: On/Off flags, bounded integers and positive
//! numbers of seconds.
//!
//! Error messages here describe only the value ("must be On or Off, not 'yes'"); the caller adds
//! which directive or option it belongs to.

use std::fmt::Display;
use std::str::FromStr;

/// Parses an On/Off flag the way mod_wsgi does: `On` or `Off` in any letter case.
pub fn on_off(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(format!("must be On or Off, not '{value}'"))
    }
}

/// Parses a decimal integer in `min..=max`.
///
/// Stricter than mod_wsgi, which reads numbers with `atoi` and so takes `5x` as 5 and `abc` as
/// 0: a typo here is a start-up error rather than a silently different setting.
pub fn integer<T>(value: &str, min: T, max: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    match value.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("must be an integer from {min} to {max}, not '{value}'")),
    }
}

/// Parses a finite number greater than zero (switch intervals and similar).
pub fn positive_number(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("must be a number greater than 0, not '{value}'")),
    }
}

/// Parses a finite number that is zero or more.
pub fn non_negative_number(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("must be a number of 0 or more, not '{value}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_off_ignores_case() {
        assert_eq!(on_off("On"), Ok(true));
        assert_eq!(on_off("oN"), Ok(true));
        assert_eq!(on_off("OFF"), Ok(false));
        assert_eq!(on_off("yes"), Err("must be On or Off, not 'yes'".to_string()));
        assert!(on_off("").is_err());
        assert!(on_off("1").is_err());
    }

    #[test]
    fn integer_checks_syntax_and_range() {
        assert_eq!(integer("15", 0u32, 100), Ok(15));
        assert_eq!(integer("0", 0u32, 100), Ok(0));
        assert_eq!(integer("-3", -20i32, 20), Ok(-3));
        assert_eq!(
            integer("101", 0u32, 100),
            Err("must be an integer from 0 to 100, not '101'".into())
        );
        assert!(integer("5x", 0u32, 100).is_err());
        assert!(integer("", 0u32, 100).is_err());
        assert!(integer("-1", 0u32, 100).is_err());
    }

    #[test]
    fn numbers_reject_nan_infinity_and_out_of_range() {
        assert_eq!(positive_number("0.005"), Ok(0.005));
        assert!(positive_number("0").is_err());
        assert!(positive_number("NaN").is_err());
        assert!(positive_number("inf").is_err());
        assert_eq!(non_negative_number("0"), Ok(0.0));
        assert!(non_negative_number("-0.5").is_err());
    }
}
