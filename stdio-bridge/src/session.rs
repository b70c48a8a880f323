//! HTTP sessions: ids, the bounded table, and protocol-version negotiation.

use std::collections::HashMap;

/// The protocol versions the bridge speaks, oldest first (their dates sort as text).
pub const VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST: &str = VERSIONS[VERSIONS.len() - 1];

pub fn known_version(v: &str) -> Option<&'static str> {
    VERSIONS.iter().copied().find(|k| *k == v)
}

/// The version answered to a client's `initialize`, given the version the child agreed to at
/// its own handshake (always one of [`VERSIONS`]): the client's own if the bridge knows it and
/// it is not newer than the child's, else the child's.
pub fn negotiate(requested: Option<&str>, child: &'static str) -> &'static str {
    match requested.and_then(known_version) {
        Some(v) if v <= child => v,
        _ => child,
    }
}

/// Client capabilities that decide whether a request from the child may be sent to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCaps {
    pub sampling: bool,
    pub elicitation: bool,
    pub roots: bool,
}

impl ClientCaps {
    /// From `initialize`'s `params.capabilities` (a capability is declared by being present).
    pub fn from_capabilities(caps: Option<&serde_json::Value>) -> Self {
        let has = |k: &str| caps.and_then(|c| c.get(k)).is_some_and(|v| !v.is_null());
        ClientCaps {
            sampling: has("sampling"),
            elicitation: has("elicitation"),
            roots: has("roots"),
        }
    }

    /// The capability a child-to-client request needs, by method, and whether this client has it.
    /// Methods without one (`ping` is answered by the bridge) need nothing.
    pub fn allows(&self, method: &str) -> Result<(), &'static str> {
        let (need, has) = match method {
            "sampling/createMessage" => ("sampling", self.sampling),
            "elicitation/create" => ("elicitation", self.elicitation),
            "roots/list" => ("roots", self.roots),
            _ => return Ok(()),
        };
        if has {
            Ok(())
        } else {
            Err(need)
        }
    }
}

#[derive(Debug)]
pub struct Session {
    pub protocol_version: &'static str,
    pub caps: ClientCaps,
    last_used: u64,
}

impl Session {
    pub fn new(protocol_version: &'static str, caps: ClientCaps) -> Self {
        Session {
            protocol_version,
            caps,
            last_used: 0,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct TableFull {
    pub limit: usize,
}

pub struct Sessions {
    map: HashMap<String, Session>,
    max: usize,
    clock: u64,
}

impl Sessions {
    pub fn new(max: usize) -> Self {
        Sessions {
            map: HashMap::new(),
            max,
            clock: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds a session. When the table is full the least recently used session that has no
    /// request in flight (`busy` says which do) is dropped and its id returned; if every session
    /// is busy the new one is refused.
    pub fn insert(
        &mut self,
        id: String,
        mut s: Session,
        busy: impl Fn(&str) -> bool,
    ) -> Result<Option<String>, TableFull> {
        let mut evicted = None;
        if self.map.len() >= self.max {
            let victim = self
                .map
                .iter()
                .filter(|(k, _)| !busy(k))
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
                .ok_or(TableFull { limit: self.max })?;
            self.map.remove(&victim);
            evicted = Some(victim);
        }
        self.clock += 1;
        s.last_used = self.clock;
        self.map.insert(id, s);
        Ok(evicted)
    }

    /// Looks a session up and marks it used.
    pub fn touch(&mut self, id: &str) -> Option<&Session> {
        self.clock += 1;
        let clock = self.clock;
        let s = self.map.get_mut(id)?;
        s.last_used = clock;
        Some(s)
    }

    pub fn remove(&mut self, id: &str) -> bool {
        self.map.remove(id).is_some()
    }
}

/// An unguessable session id: 128 bits from the OS, as 32 lowercase hex digits (visible ASCII,
/// as the spec requires).
pub fn new_session_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negotiation() {
        assert_eq!(
            negotiate(Some("2025-06-18"), "2025-11-25"),
            "2025-06-18",
            "older known: echoed"
        );
        assert_eq!(negotiate(Some("2025-11-25"), "2025-11-25"), "2025-11-25");
        assert_eq!(
            negotiate(Some("2025-11-25"), "2025-06-18"),
            "2025-06-18",
            "newer than the child: the child's"
        );
        assert_eq!(
            negotiate(Some("2024-11-05"), "2025-11-25"),
            "2025-11-25",
            "unknown: the child's"
        );
        assert_eq!(negotiate(Some("2026-07-28"), "2025-11-25"), "2025-11-25");
        assert_eq!(negotiate(None, "2025-03-26"), "2025-03-26");
        assert_eq!(known_version("2025-03-26"), Some("2025-03-26"));
        assert_eq!(known_version("2025-3-26"), None);
    }

    #[test]
    fn capabilities() {
        let c = ClientCaps::from_capabilities(Some(
            &json!({"sampling": {}, "roots": {"listChanged": true}, "elicitation": null}),
        ));
        assert_eq!(
            c,
            ClientCaps {
                sampling: true,
                elicitation: false,
                roots: true
            }
        );
        assert_eq!(c.allows("sampling/createMessage"), Ok(()));
        assert_eq!(c.allows("elicitation/create"), Err("elicitation"));
        assert_eq!(c.allows("roots/list"), Ok(()));
        assert_eq!(ClientCaps::from_capabilities(None).allows("roots/list"), Err("roots"));
        assert_eq!(ClientCaps::default().allows("some/extension"), Ok(()));
    }

    #[test]
    fn full_table_drops_the_least_recently_used_idle_session() {
        let mut t = Sessions::new(2);
        let s = || Session::new(LATEST, ClientCaps::default());
        assert_eq!(t.insert("a".into(), s(), |_| false), Ok(None));
        assert_eq!(t.insert("b".into(), s(), |_| false), Ok(None));
        assert!(t.touch("a").is_some()); // b is now the least recently used
        assert_eq!(t.insert("c".into(), s(), |_| false), Ok(Some("b".into())));
        assert!(t.touch("b").is_none());
        // c is busy, a is idle: a goes even though c is older in use order after this touch.
        assert!(t.touch("c").is_some());
        assert_eq!(t.insert("d".into(), s(), |k| k == "c"), Ok(Some("a".into())));
        // Everyone busy: refused, nothing dropped.
        assert_eq!(t.insert("e".into(), s(), |_| true), Err(TableFull { limit: 2 }));
        assert_eq!(t.len(), 2);
        assert!(t.remove("c") && !t.remove("c"));
    }

    #[test]
    fn session_ids_are_long_random_and_visible_ascii() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
