//! Connection limits per listener and per client address: a flood from one address (or many)
//! is turned away at accept with the wire's own "too many connections" error, before any
//! handshake work, and the gateway keeps serving the connections it has.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

/// `[limits]`: how many client connections the gateway holds at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Connections each listener (PostgreSQL, MySQL, SSH) holds at once.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Connections one client address holds at once on each listener.
    #[serde(default = "default_per_source")]
    pub connections_per_source: usize,
    /// How long a client has to log in (each step of PostgreSQL's and MySQL's login; SSH's
    /// key exchange and authentication in all), e.g. `30s`.
    #[serde(default = "default_login_timeout", with = "humantime_serde_compat")]
    pub login_timeout: Duration,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            connections: default_connections(),
            connections_per_source: default_per_source(),
            login_timeout: default_login_timeout(),
        }
    }
}

fn default_login_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `login_timeout` as a humantime string (`30s`, `2m`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text}: {e} (examples: 30s, 2m)")))
    }
}

fn default_connections() -> usize {
    4096
}

fn default_per_source() -> usize {
    512
}

/// One listener's count of live connections, in all and per address.
#[derive(Debug)]
pub struct ConnectionLimits {
    all: usize,
    per_source: usize,
    live: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection counted against the limits; dropping it frees its place.
#[derive(Debug)]
pub struct Place {
    limits: Arc<ConnectionLimits>,
    source: IpAddr,
}

impl ConnectionLimits {
    /// Limits as configured.
    pub fn new(section: &LimitsSection) -> Arc<Self> {
        Arc::new(Self {
            all: section.connections,
            per_source: section.connections_per_source,
            live: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for a connection from `source`, or why there is none (a sentence for the
    /// client).
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Place, String> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_source) = &mut *live;
        if *total >= self.all {
            return Err(format!(
                "the gateway holds {} connections on this listener, its limit",
                self.all
            ));
        }
        let from = by_source.entry(source).or_insert(0);
        if *from >= self.per_source {
            return Err(format!(
                "too many connections from {source}: {} at once is the gateway's limit per \
                 client address",
                self.per_source
            ));
        }
        *from += 1;
        *total += 1;
        Ok(Place {
            limits: self.clone(),
            source,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut live = self.limits.live.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_source) = &mut *live;
        *total = total.saturating_sub(1);
        if let Some(from) = by_source.get_mut(&self.source) {
            *from -= 1;
            if *from == 0 {
                by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_source_and_in_all_and_freed_on_drop() {
        let limits = ConnectionLimits::new(&LimitsSection {
            connections: 3,
            connections_per_source: 2,
            ..LimitsSection::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert!(limits.admit(a).unwrap_err().contains("from 10.0.0.1"));
        let _b1 = limits.admit(b).unwrap();
        assert!(limits.admit(b).unwrap_err().contains("its limit"));
        drop(a1);
        assert!(limits.admit(a).is_ok());
    }
}
