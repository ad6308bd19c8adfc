//! The decision log: what the egress proxy decided for each sandbox's connections and requests,
//! the last `EGRESS_LOG_ENTRIES` per sandbox, in memory, readable and followable.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::limits::EGRESS_LOG_ENTRIES;
use serde::Serialize;
use tokio::sync::watch;

use crate::rules::AllowRule;

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A `CONNECT` tunnel.
    Tunnel,
    /// A plain-HTTP request, or one request inside an intercepted tunnel.
    Request,
}

/// What the proxy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Relayed.
    Allowed,
    /// Refused by a rule, the ceiling or a check (`reason` says which).
    Refused,
    /// Allowed, but the upstream could not be reached (`reason` says why).
    Failed,
}

/// Why a connection or request was refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No allow rule covers the host and port.
    NotAllowed,
    /// The name resolved only to internal addresses.
    InternalAddress,
    /// The tunnel's TLS server name is not the `CONNECT` name.
    SniMismatch,
    /// The tunnel did not begin with a TLS ClientHello.
    NotTls,
    /// The operator's ceiling does not cover the host and port.
    Ceiling,
    /// The credential rule's secret does not exist.
    SecretMissing,
    /// The request was not a proxy request the proxy understands.
    BadRequest,
    /// The name did not resolve.
    Unresolvable,
    /// No address accepted the connection in time.
    ConnectFailed,
    /// The upstream's TLS failed (its certificate did not verify, or the handshake broke).
    UpstreamTls,
    /// The sandbox's client broke off the TLS handshake with the proxy (does it trust the
    /// Nimbus CA?).
    ClientTls,
}

impl Reason {
    /// Whether the proxy refused (403) rather than failed to reach the upstream (502).
    pub fn decision(self) -> Decision {
        match self {
            Self::Unresolvable | Self::ConnectFailed | Self::UpstreamTls | Self::ClientTls => Decision::Failed,
            _ => Decision::Refused,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAllowed => "not_allowed",
            Self::InternalAddress => "internal_address",
            Self::SniMismatch => "sni_mismatch",
            Self::NotTls => "not_tls",
            Self::Ceiling => "ceiling",
            Self::SecretMissing => "secret_missing",
            Self::BadRequest => "bad_request",
            Self::Unresolvable => "unresolvable",
            Self::ConnectFailed => "connect_failed",
            Self::UpstreamTls => "upstream_tls",
            Self::ClientTls => "client_tls",
        }
    }
}

impl Entry {
    /// An entry for `method host:port`, allowed until told otherwise (`seq` and `time` are set
    /// when it is recorded).
    pub fn new(kind: Kind, method: &str, host: &str, port: u16) -> Self {
        Self {
            seq: 0,
            time: String::new(),
            kind,
            method: method.to_owned(),
            host: host.to_owned(),
            port,
            address: None,
            decision: Decision::Allowed,
            rule: None,
            reason: None,
            credential: None,
            status: None,
            bytes_out: 0,
            bytes_in: 0,
        }
    }

    /// Marks the entry refused or failed for `reason`.
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.decision = reason.decision();
        self.reason = Some(reason);
        self
    }
}

/// One decision, as `GET …/egress` renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Position in the sandbox's log, from 1.
    pub seq: u64,
    /// When the connection or request ended (RFC 3339, ms).
    pub time: String,
    /// Tunnel or request.
    pub kind: Kind,
    /// `CONNECT`, or the request's method.
    pub method: String,
    /// The host asked for (normalized).
    pub host: String,
    /// The port asked for.
    pub port: u16,
    /// The address connected to.
    pub address: Option<String>,
    /// Allowed, refused or failed.
    pub decision: Decision,
    /// The allow rule that matched.
    pub rule: Option<AllowRule>,
    /// Why it was refused or failed.
    pub reason: Option<Reason>,
    /// The secret whose value was added as a header (its name only).
    pub credential: Option<String>,
    /// The upstream's HTTP status, for requests.
    pub status: Option<u16>,
    /// Bytes sent to the upstream.
    pub bytes_out: u64,
    /// Bytes received from the upstream.
    pub bytes_in: u64,
}

/// One sandbox's log.
#[derive(Default)]
struct SandboxLog {
    entries: VecDeque<Arc<Entry>>,
    /// The last `seq` written; followers wait on it.
    last: watch::Sender<u64>,
}

/// Every sandbox's decision log.
#[derive(Default)]
pub struct DecisionLogs {
    logs: Mutex<HashMap<String, SandboxLog>>,
}

impl DecisionLogs {
    /// Appends an entry to a sandbox's log (its `seq` and `time` are set here), dropping the
    /// oldest past `EGRESS_LOG_ENTRIES`.
    pub fn record(&self, sandbox: &str, mut entry: Entry) {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let log = logs.entry(sandbox.to_owned()).or_default();
        entry.seq = *log.last.borrow() + 1;
        entry.time = nimbus_core::time::rfc3339_ms(nimbus_core::time::now_ms());
        if log.entries.len() == EGRESS_LOG_ENTRIES {
            log.entries.pop_front();
        }
        let seq = entry.seq;
        log.entries.push_back(Arc::new(entry));
        log.last.send_replace(seq);
    }

    /// The entries after `after` (a `seq`), oldest first, the last `tail` of them when given;
    /// and the log's last `seq`, from which to follow on.
    pub fn read(&self, sandbox: &str, after: u64, tail: Option<usize>) -> (Vec<Arc<Entry>>, u64) {
        let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(log) = logs.get(sandbox) else { return (Vec::new(), after) };
        let newer: Vec<Arc<Entry>> = log.entries.iter().filter(|e| e.seq > after).cloned().collect();
        let skip = tail.map_or(0, |tail| newer.len().saturating_sub(tail));
        (newer.into_iter().skip(skip).collect(), *log.last.borrow())
    }

    /// A receiver of the sandbox's last `seq`, for followers (made if the log is still empty).
    pub fn watch(&self, sandbox: &str) -> watch::Receiver<u64> {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.entry(sandbox.to_owned()).or_default().last.subscribe()
    }

    /// Drops a removed sandbox's log (its followers see the sender go).
    pub fn forget(&self, sandbox: &str) {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner).remove(sandbox);
    }

    /// Keeps only the logs of the sandboxes `known` says still exist.
    pub fn retain(&self, known: impl Fn(&str) -> bool) {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner).retain(|sandbox, _| known(sandbox));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str) -> Entry {
        Entry::new(Kind::Tunnel, "CONNECT", host, 443).with_reason(Reason::NotAllowed)
    }

    #[test]
    fn logs_are_bounded_ordered_and_followable() {
        let logs = DecisionLogs::default();
        let mut follower = logs.watch("a");
        for i in 0..EGRESS_LOG_ENTRIES + 5 {
            logs.record("a", entry(&format!("h{i}.com")));
        }
        logs.record("b", entry("other.com"));
        assert!(follower.has_changed().expect("sender alive"));
        assert_eq!(*follower.borrow_and_update(), (EGRESS_LOG_ENTRIES + 5) as u64);
        let (all, last) = logs.read("a", 0, None);
        assert_eq!(last, 1005);
        assert_eq!(all.len(), EGRESS_LOG_ENTRIES, "the oldest entries went");
        assert_eq!(all[0].seq, 6);
        assert_eq!(all[0].host, "h5.com");
        let (tail, _) = logs.read("a", 0, Some(2));
        assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1004, 1005]);
        assert_eq!(logs.read("a", 1004, None).0.len(), 1);
        assert_eq!(logs.read("b", 0, None).0[0].seq, 1, "each sandbox counts on its own");
        logs.retain(|sandbox| sandbox == "a");
        assert!(logs.read("b", 0, None).0.is_empty(), "retain drops the others");
        logs.forget("a");
        assert!(logs.read("a", 0, None).0.is_empty());
        assert!(follower.has_changed().is_err(), "followers see the log go");
    }
}
