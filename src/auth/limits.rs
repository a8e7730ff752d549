//! Limits per principal, so one client cannot starve the others: requests in flight (a
//! subscription counts until it ends) and a token bucket of commands per second. Over a limit
//! the answer is RESOURCE_EXHAUSTED with a retry hint; other principals are not affected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Default most requests one principal may have in flight (subscriptions included).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default commands per second one principal may send, sustained.
pub const DEFAULT_COMMANDS_PER_SECOND: u32 = 5_000;
/// Most principals whose limits are tracked at once (the map is cleared of idle ones beyond).
pub const MAX_TRACKED_PRINCIPALS: usize = 10_000;

/// The limits of every principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalLimits {
    /// Most requests in flight.
    pub max_in_flight: usize,
    /// Commands per second, sustained; bursts up to one second's worth.
    pub commands_per_second: u32,
}

impl Default for PrincipalLimits {
    fn default() -> Self {
        PrincipalLimits {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            commands_per_second: DEFAULT_COMMANDS_PER_SECOND,
        }
    }
}

/// One principal's counters.
#[derive(Debug)]
struct Usage {
    in_flight: Arc<AtomicUsize>,
    /// Commands that may be sent now (fractional), refilled at the rate up to one second's worth.
    tokens: f64,
    refilled: Instant,
}

/// The limiter the authorization layer consults.
#[derive(Debug)]
pub struct Limiter {
    limits: PrincipalLimits,
    usage: Mutex<HashMap<String, Usage>>,
}

/// A request in flight; dropping it (when the response body ends) frees its place.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn exhausted(message: String, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

impl Limiter {
    /// A limiter with `limits` for every principal.
    pub fn new(limits: PrincipalLimits) -> Limiter {
        Limiter {
            limits,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `principal` (a command when `command`), or refuses it.
    pub fn admit(&self, principal: &str, command: bool) -> Result<InFlight, Status> {
        let mut usage = self.usage.lock().expect("limiter");
        if usage.len() >= MAX_TRACKED_PRINCIPALS && !usage.contains_key(principal) {
            usage.retain(|_, entry| entry.in_flight.load(Ordering::Acquire) > 0);
        }
        let rate = f64::from(self.limits.commands_per_second);
        let entry = usage.entry(principal.to_owned()).or_insert_with(|| Usage {
            in_flight: Arc::new(AtomicUsize::new(0)),
            tokens: rate,
            refilled: Instant::now(),
        });
        if command {
            let now = Instant::now();
            entry.tokens = (entry.tokens + now.duration_since(entry.refilled).as_secs_f64() * rate).min(rate);
            entry.refilled = now;
            if entry.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - entry.tokens) / rate.max(1.0));
                return Err(exhausted(
                    format!(
                        "principal {principal} is over its rate of {} commands per second; retry in {} ms",
                        self.limits.commands_per_second,
                        wait.as_millis().max(1)
                    ),
                    wait,
                ));
            }
            entry.tokens -= 1.0;
        }
        let in_flight = entry.in_flight.fetch_add(1, Ordering::AcqRel);
        if in_flight >= self.limits.max_in_flight {
            entry.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(exhausted(
                format!(
                    "principal {principal} has {in_flight} requests in flight, the limit is {}; retry when one ends",
                    self.limits.max_in_flight
                ),
                Duration::from_millis(100),
            ));
        }
        Ok(InFlight(entry.in_flight.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_over_its_limits_is_refused_and_others_are_not() {
        let limiter = Limiter::new(PrincipalLimits {
            max_in_flight: 2,
            commands_per_second: 3,
        });
        let held: Vec<InFlight> = (0..2).map(|_| limiter.admit("a", false).unwrap()).collect();
        let refused = limiter.admit("a", false).unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(refused.get_details_retry_info().is_some(), "a retry hint");
        assert!(
            limiter.admit("b", false).is_ok(),
            "another principal is not affected"
        );
        drop(held);
        // Three commands at once (the burst), then the fourth waits.
        for _ in 0..3 {
            drop(limiter.admit("a", true).unwrap());
        }
        let over = limiter.admit("a", true).unwrap_err();
        assert!(
            over.message().contains("over its rate of 3 commands per second"),
            "{over:?}"
        );
        drop(limiter.admit("b", true).unwrap());
    }
}
