//! Fault injection: `--fail-rate 429=0.05,500=0.01` answers that share of requests with that
//! status and the provider's own body for it, so clients' retry paths run against real shapes.

use std::fmt;

/// Statuses and the share of requests that get each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    rates: Vec<(u16, f64)>,
}

/// A `--fail-rate` value that cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("--fail-rate: {0}; write STATUS=SHARE pairs such as 429=0.05,500=0.01")]
pub struct FaultsError(String);

impl Faults {
    /// Parses `STATUS=SHARE[,STATUS=SHARE...]`.
    pub fn parse(text: &str) -> Result<Self, FaultsError> {
        let mut rates = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (status, share) = pair
                .split_once('=')
                .ok_or_else(|| FaultsError(format!("'{pair}' has no '='")))?;
            let status: u16 = status
                .trim()
                .parse()
                .ok()
                .filter(|s| (400..=599).contains(s))
                .ok_or_else(|| {
                    FaultsError(format!("'{status}' is not an HTTP error status (400-599)"))
                })?;
            let share: f64 = share
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| (0.0..=1.0).contains(s))
                .ok_or_else(|| FaultsError(format!("'{share}' is not a share between 0 and 1")))?;
            rates.push((status, share));
        }
        let total: f64 = rates.iter().map(|(_, share)| share).sum();
        if total > 1.0 {
            return Err(FaultsError(format!(
                "the shares add up to {total}, more than 1"
            )));
        }
        Ok(Self { rates })
    }

    /// The status to fail this request with, if any.
    pub fn draw(&self) -> Option<u16> {
        if self.rates.is_empty() {
            return None;
        }
        let mut roll = fastrand::f64();
        for (status, share) in &self.rates {
            if roll < *share {
                return Some(*status);
            }
            roll -= share;
        }
        None
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = self.rates.iter().map(|(s, r)| format!("{s}={r}")).collect();
        formatter.write_str(&pairs.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_draws_in_proportion() {
        let faults = Faults::parse("429=0.5, 500=0.25").unwrap();
        let mut counts = [0u32; 3];
        for _ in 0..20_000 {
            match faults.draw() {
                Some(429) => counts[0] += 1,
                Some(500) => counts[1] += 1,
                None => counts[2] += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert!((4_000..6_000).contains(&counts[1]), "{counts:?}");
        assert_eq!(Faults::parse("").unwrap().draw(), None);
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(
            Faults::parse("429")
                .unwrap_err()
                .to_string()
                .contains("has no '='")
        );
        assert!(
            Faults::parse("200=0.1")
                .unwrap_err()
                .to_string()
                .contains("not an HTTP error status")
        );
        assert!(
            Faults::parse("500=2")
                .unwrap_err()
                .to_string()
                .contains("between 0 and 1")
        );
        assert!(
            Faults::parse("500=0.6,429=0.6")
                .unwrap_err()
                .to_string()
                .contains("more than 1")
        );
    }
}
