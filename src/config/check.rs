//! Range checks of numeric options: each error names the key's full path and the range, and
//! `.nan`/`.inf` fail every check on a real number.

use super::ConfigError;

fn err(path: &str, msg: String) -> Result<(), ConfigError> {
    Err(ConfigError::Key { path: path.to_string(), msg })
}

/// A finite number ≥ 0.
pub fn non_negative(path: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { err(path, format!("must be a finite number ≥ 0, got {v}")) }
}

/// A finite number > 0.
pub fn positive(path: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { err(path, format!("must be a finite number > 0, got {v}")) }
}

/// A number in [0, 1).
pub fn fraction(path: &str, v: f64) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&v) { Ok(()) } else { err(path, format!("must be in [0, 1), got {v}")) }
}

/// A number in [0, 1].
pub fn unit(path: &str, v: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&v) { Ok(()) } else { err(path, format!("must be in [0, 1], got {v}")) }
}

/// A count in `1..=max`.
pub fn count(path: &str, v: usize, max: usize) -> Result<(), ConfigError> {
    if (1..=max).contains(&v) { Ok(()) } else { err(path, format!("must be in 1..={max}, got {v}")) }
}

/// A count ≤ `max` (0 allowed).
pub fn at_most(path: &str, v: usize, max: usize) -> Result<(), ConfigError> {
    if v <= max { Ok(()) } else { err(path, format!("must be at most {max}, got {v}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_inf_fail_every_real_check() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for check in [non_negative, positive, fraction, unit] {
                let e = check("a.b", v).unwrap_err().to_string();
                assert!(e.contains("`a.b`"), "{e}");
            }
        }
        assert!(non_negative("x", -1e-9).is_err() && non_negative("x", 0.0).is_ok());
        assert!(positive("x", 0.0).is_err() && positive("x", 1e-300).is_ok());
        assert!(fraction("x", 1.0).is_err() && unit("x", 1.0).is_ok());
        assert!(count("x", 0, 5).is_err() && count("x", 6, 5).is_err() && count("x", 5, 5).is_ok());
    }
}
