//! Which HTTP request an answer from the child belongs to.
//!
//! Every request forwarded to the child gets a bridge-unique numeric id (and, if it carries a
//! progress token, that same number as its token), so two HTTP sessions using the same id never
//! collide on the one stdio connection. Requests the child sends to the client get bridge ids
//! too, and the client's answer is mapped back to the child's own id. No I/O here: the sink `S`
//! is whatever the HTTP side waits on.

use crate::jsonrpc::Raw;
use crate::session::ClientCaps;
use std::collections::HashMap;

pub struct Pending<S> {
    pub session: String,
    /// The client's id, raw, to put back on the answer.
    pub client_id: Raw,
    /// The client's progress token, raw, if the request carried one.
    pub progress_token: Option<Raw>,
    /// The child generation the request was written to.
    pub generation: u64,
    pub caps: ClientCaps,
    pub sink: S,
}

#[derive(Debug)]
pub struct ServerRequest {
    /// The client request whose stream carried it.
    pub origin: u64,
    pub session: String,
    /// The child's own id, raw.
    pub child_id: Raw,
    pub generation: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BeginError {
    /// `limit` requests are in flight already.
    Full { limit: usize },
    /// The session already has a request in flight with this id.
    Duplicate,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TakeError {
    Unknown,
    OtherSession,
}

pub struct Router<S> {
    last_id: u64,
    max_in_flight: usize,
    pending: HashMap<u64, Pending<S>>,
    by_client: HashMap<(String, String), u64>,
    server: HashMap<u64, ServerRequest>,
}

impl<S> Router<S> {
    pub fn new(max_in_flight: usize) -> Self {
        Router {
            last_id: 0,
            max_in_flight,
            pending: HashMap::new(),
            by_client: HashMap::new(),
            server: HashMap::new(),
        }
    }

    /// A number never handed out before (bridge ids for requests either way, and the handshake).
    pub fn fresh_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Registers a client request; its bridge id is what the child sees.
    pub fn begin(&mut self, p: Pending<S>) -> Result<u64, BeginError> {
        if self.pending.len() >= self.max_in_flight {
            return Err(BeginError::Full {
                limit: self.max_in_flight,
            });
        }
        let key = (p.session.clone(), p.client_id.get().to_string());
        if self.by_client.contains_key(&key) {
            return Err(BeginError::Duplicate);
        }
        let id = self.fresh_id();
        self.by_client.insert(key, id);
        self.pending.insert(id, p);
        Ok(id)
    }

    pub fn get(&self, id: u64) -> Option<&Pending<S>> {
        self.pending.get(&id)
    }

    /// Removes a client request (answered, timed out, abandoned); `None` if it was gone already.
    pub fn finish(&mut self, id: u64) -> Option<Pending<S>> {
        let p = self.pending.remove(&id)?;
        self.by_client
            .remove(&(p.session.clone(), p.client_id.get().to_string()));
        Some(p)
    }

    /// The bridge id of a session's in-flight request, by the id the client gave it.
    pub fn find_client(&self, session: &str, client_id: &str) -> Option<u64> {
        self.by_client
            .get(&(session.to_string(), client_id.to_string()))
            .copied()
    }

    pub fn session_busy(&self, session: &str) -> bool {
        self.pending.values().any(|p| p.session == session)
    }

    /// Where a child message that names no request (a log message, a sampling request) goes:
    /// stdio gives no way to tell which request caused it, so it goes to a client only when every
    /// request in flight belongs to one session (then to that session's oldest, the likeliest
    /// cause and the longest open). Otherwise `None`: it is never guessed across sessions.
    pub fn unattributed_target(&self) -> Option<u64> {
        let mut sessions = self.pending.values().map(|p| &p.session);
        let first = sessions.next()?;
        if sessions.any(|s| s != first) {
            return None;
        }
        self.pending.keys().min().copied()
    }

    /// Records a request from the child carried on `origin`'s stream; returns the id the client
    /// sees. The table holds at most `--max-queue` of them: past that the oldest is forgotten.
    pub fn add_server_request(&mut self, origin: u64, child_id: Raw) -> Option<u64> {
        let (session, generation) = {
            let p = self.pending.get(&origin)?;
            (p.session.clone(), p.generation)
        };
        while self.server.len() >= self.max_in_flight {
            let Some(oldest) = self.server.keys().min().copied() else {
                break;
            };
            self.server.remove(&oldest);
        }
        let id = self.fresh_id();
        self.server.insert(
            id,
            ServerRequest {
                origin,
                session,
                child_id,
                generation,
            },
        );
        Some(id)
    }

    /// The child's request a client is answering; only the session it was sent to may answer.
    pub fn take_server_request(&mut self, session: &str, id: u64) -> Result<ServerRequest, TakeError> {
        match self.server.get(&id) {
            None => Err(TakeError::Unknown),
            Some(r) if r.session != session => Err(TakeError::OtherSession),
            Some(_) => self.server.remove(&id).ok_or(TakeError::Unknown),
        }
    }

    /// A child's request by the child's own id (for the child's `notifications/cancelled`).
    pub fn server_request_by_child_id(&self, generation: u64, child_id: &str) -> Option<(u64, &ServerRequest)> {
        self.server
            .iter()
            .find(|(_, r)| r.generation == generation && r.child_id.get() == child_id)
            .map(|(id, r)| (*id, r))
    }

    pub fn forget_server_request(&mut self, id: u64) {
        self.server.remove(&id);
    }

    /// The child of `generation` is gone: every request written to it, and every request it
    /// made, is over. Returns the client requests so each can be answered with an error.
    pub fn drain_generation(&mut self, generation: u64) -> Vec<Pending<S>> {
        self.server.retain(|_, r| r.generation != generation);
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.generation == generation)
            .map(|(id, _)| *id)
            .collect();
        let mut out: Vec<(u64, Pending<S>)> = ids
            .into_iter()
            .filter_map(|id| self.finish(id).map(|p| (id, p)))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out.into_iter().map(|(_, p)| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{number, to_raw};

    fn pending(session: &str, client_id: Raw, sink: &'static str) -> Pending<&'static str> {
        Pending {
            session: session.into(),
            client_id,
            progress_token: None,
            generation: 1,
            caps: ClientCaps::default(),
            sink,
        }
    }

    #[test]
    fn same_client_id_in_two_sessions_gets_two_bridge_ids() {
        let mut r = Router::new(8);
        let a = r.begin(pending("A", number(1), "a")).unwrap();
        let b = r.begin(pending("B", number(1), "b")).unwrap();
        assert_ne!(a, b);
        // The child answers b first: it reaches B's sink with B's id.
        let pb = r.finish(b).unwrap();
        assert_eq!((pb.sink, pb.session.as_str(), pb.client_id.get()), ("b", "B", "1"));
        let pa = r.finish(a).unwrap();
        assert_eq!((pa.sink, pa.session.as_str()), ("a", "A"));
        // A second answer with the same id (a confused child) finds nothing.
        assert!(r.finish(a).is_none());
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn ids_are_never_reused() {
        let mut r = Router::new(2);
        let a = r.begin(pending("A", number(1), "a")).unwrap();
        r.finish(a);
        let b = r.begin(pending("A", number(1), "a")).unwrap();
        assert!(
            b > a,
            "a late answer to {a} must not reach the request now using the client's id 1"
        );
        assert!(r.fresh_id() > b);
    }

    #[test]
    fn duplicate_id_in_one_session_is_refused_until_it_finishes() {
        let mut r = Router::new(8);
        let a = r.begin(pending("A", to_raw("x"), "a")).unwrap();
        assert_eq!(
            r.begin(pending("A", to_raw("x"), "a2")).err(),
            Some(BeginError::Duplicate)
        );
        assert_eq!(r.find_client("A", "\"x\""), Some(a));
        assert_eq!(r.find_client("B", "\"x\""), None);
        r.finish(a);
        assert_eq!(r.find_client("A", "\"x\""), None);
        assert!(r.begin(pending("A", to_raw("x"), "a3")).is_ok());
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut r = Router::new(2);
        let a = r.begin(pending("A", number(1), "a")).unwrap();
        r.begin(pending("A", number(2), "a")).unwrap();
        assert_eq!(
            r.begin(pending("B", number(1), "b")).err(),
            Some(BeginError::Full { limit: 2 })
        );
        r.finish(a);
        assert!(r.begin(pending("B", number(1), "b")).is_ok());
    }

    #[test]
    fn unattributed_messages_never_cross_sessions() {
        let mut r = Router::new(8);
        assert_eq!(r.unattributed_target(), None, "nothing in flight");
        let a1 = r.begin(pending("A", number(1), "a")).unwrap();
        let a2 = r.begin(pending("A", number(2), "a")).unwrap();
        assert_eq!(r.unattributed_target(), Some(a1), "one session: its oldest request");
        let b = r.begin(pending("B", number(1), "b")).unwrap();
        assert_eq!(r.unattributed_target(), None, "two sessions: no guess");
        r.finish(a1);
        r.finish(a2);
        assert_eq!(r.unattributed_target(), Some(b));
    }

    #[test]
    fn server_requests_round_trip_to_the_childs_id_and_only_from_their_session() {
        let mut r = Router::new(8);
        let a = r.begin(pending("A", number(1), "a")).unwrap();
        let s = r.add_server_request(a, number(0)).unwrap();
        assert_ne!(s, a);
        assert_eq!(r.server_request_by_child_id(1, "0").map(|(id, _)| id), Some(s));
        assert_eq!(
            r.server_request_by_child_id(2, "0").map(|(id, _)| id),
            None,
            "other generation"
        );
        assert_eq!(r.take_server_request("B", s).err(), Some(TakeError::OtherSession));
        let taken = r.take_server_request("A", s).unwrap();
        assert_eq!(
            (taken.child_id.get(), taken.origin, taken.session.as_str()),
            ("0", a, "A")
        );
        assert_eq!(
            r.take_server_request("A", s).err(),
            Some(TakeError::Unknown),
            "answered once"
        );
        assert!(r.add_server_request(999, number(5)).is_none(), "no such origin");
    }

    #[test]
    fn server_request_table_is_bounded() {
        let mut r = Router::new(2);
        let a = r.begin(pending("A", number(1), "a")).unwrap();
        let s1 = r.add_server_request(a, number(10)).unwrap();
        let s2 = r.add_server_request(a, number(11)).unwrap();
        let s3 = r.add_server_request(a, number(12)).unwrap();
        assert_eq!(
            r.take_server_request("A", s1).err(),
            Some(TakeError::Unknown),
            "oldest forgotten"
        );
        assert!(r.take_server_request("A", s2).is_ok());
        assert!(r.take_server_request("A", s3).is_ok());
    }

    #[test]
    fn a_dead_generation_takes_its_requests_with_it() {
        let mut r = Router::new(8);
        let a = r.begin(pending("A", number(1), "a")).unwrap();
        let mut newer = pending("B", number(1), "b");
        newer.generation = 2;
        let b = r.begin(newer).unwrap();
        let s = r.add_server_request(a, number(0)).unwrap();
        let drained = r.drain_generation(1);
        assert_eq!(drained.iter().map(|p| p.sink).collect::<Vec<_>>(), ["a"]);
        assert!(r.get(a).is_none() && r.get(b).is_some());
        assert_eq!(r.find_client("A", "1"), None);
        assert_eq!(r.take_server_request("A", s).err(), Some(TakeError::Unknown));
        assert!(r.session_busy("B") && !r.session_busy("A"));
    }
}
