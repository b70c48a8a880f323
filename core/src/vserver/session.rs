//! The composite session id: every backend's session, sealed, so any replica resumes it.
//!
//! `m1.<key id>.<base64url(nonce ‖ ciphertext)>`, XChaCha20-Poly1305 with a random 192-bit
//! nonce (no nonce bookkeeping across replicas), the virtual server's name as associated
//! data. The plaintext holds the virtual server, a binding of the principal (a SHA-256 of
//! issuer, subject and tenant: another caller presenting the id is refused), the issue time,
//! the protocol version the client was given, and per backend its session id and protocol
//! version. Keys are used as configured: no derivation per session or per request.

use crate::principal::Principal;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SessionKeySpec;

const VERSION_TAG: &str = "m1";
const NONCE_LEN: usize = 24;
/// Longest session id accepted (a sealed id for 32 backends with long ids stays well below).
pub const MAX_SESSION_ID: usize = 8192;

/// One backend's part of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Backend name.
    #[serde(rename = "n")]
    pub backend: String,
    /// Its `Mcp-Session-Id`, if it gave one.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The protocol version it negotiated.
    #[serde(rename = "v")]
    pub version: String,
    /// Which methods it serves, from its capabilities (`merge::capability_letters`).
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<String>,
}

/// What a session id carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "x")]
    pub server: String,
    #[serde(rename = "p")]
    pub principal: String,
    /// Seconds since the epoch.
    #[serde(rename = "t")]
    pub issued: u64,
    /// The protocol version the client was answered with.
    #[serde(rename = "v")]
    pub version: String,
    /// The backends in this session (a fail-open backend that failed at `initialize` is not).
    #[serde(rename = "b")]
    pub members: Vec<Member>,
}

impl Session {
    pub fn member(&self, backend: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.backend == backend)
    }
}

/// Why a session id does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the session id is not one this gateway issued")]
    Malformed,
    #[error("the session id was sealed with key {0:?}, which this gateway no longer has")]
    UnknownKey(String),
    #[error("the session id does not verify (forged, corrupted, or another virtual server's)")]
    Forged,
    #[error("the session expired")]
    Expired,
    #[error("the session belongs to another principal")]
    OtherPrincipal,
}

/// The compiled key ring: the first seals, all open.
pub struct Keys {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keys").field("ids", &ids).finish_non_exhaustive()
    }
}

fn decode_key(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
}

/// The principal binding: empty for an anonymous caller (no identity configured).
pub fn binding(p: Option<&Principal>) -> String {
    match p.filter(|p| !p.is_anonymous()) {
        None => String::new(),
        Some(p) => {
            let mut h = Sha256::new();
            for part in [p.issuer.as_str(), p.subject.as_str(), p.tenant.as_deref().unwrap_or("")] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part.as_bytes());
            }
            URL_SAFE_NO_PAD.encode(&h.finalize()[..16])
        }
    }
}

impl Keys {
    pub fn compile(specs: &[SessionKeySpec]) -> Result<Keys, Vec<(String, String)>> {
        let mut errors = Vec::new();
        if specs.is_empty() {
            errors.push((
                "session_keys".to_owned(),
                "at least one key is needed to seal session ids (32 random bytes, base64; e.g. `openssl rand -base64 32`)"
                    .to_owned(),
            ));
        }
        let mut keys = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let at = |f: &str| format!("session_keys[{i}].{f}");
            if s.id.is_empty()
                || s.id.len() > 16
                || !s
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                errors.push((
                    at("id"),
                    format!("must be 1-16 characters of [A-Za-z0-9_-], got {:?}", s.id),
                ));
            }
            if specs[..i].iter().any(|o| o.id == s.id) {
                errors.push((at("id"), format!("{:?} is used by an earlier key", s.id)));
            }
            match decode_key(&s.key) {
                Some(k) if k.len() == 32 => match XChaCha20Poly1305::new_from_slice(&k) {
                    Ok(c) => keys.push((s.id.clone(), c)),
                    Err(_) => errors.push((at("key"), "not a usable key".into())),
                },
                Some(k) => errors.push((at("key"), format!("must decode to 32 bytes, got {}", k.len()))),
                None => errors.push((at("key"), "is not base64".into())),
            }
        }
        if errors.is_empty() {
            Ok(Keys { keys })
        } else {
            Err(errors)
        }
    }

    /// Seal a session into an id. `None` only if the system's random source fails.
    pub fn seal(&self, s: &Session) -> Option<String> {
        let (id, cipher) = self.keys.first()?;
        let plain = serde_json::to_vec(s).ok()?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: s.server.as_bytes(),
                },
            )
            .ok()?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        Some(format!("{VERSION_TAG}.{id}.{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Open a session id presented to virtual server `server` by the caller bound as
    /// `principal`, at `now` (seconds), valid for `ttl` seconds after issue.
    pub fn open(&self, token: &str, server: &str, principal: &str, now: u64, ttl: u64) -> Result<Session, OpenError> {
        if token.len() > MAX_SESSION_ID {
            return Err(OpenError::Malformed);
        }
        let mut parts = token.splitn(3, '.');
        let (Some(VERSION_TAG), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(OpenError::Malformed);
        };
        let Some((_, cipher)) = self.keys.iter().find(|(id, _)| id == kid) else {
            return Err(OpenError::UnknownKey(kid.chars().take(16).collect()));
        };
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(OpenError::Malformed);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: server.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Forged)?;
        let s: Session = serde_json::from_slice(&plain).map_err(|_| OpenError::Forged)?;
        if s.server != server {
            return Err(OpenError::Forged);
        }
        if now.saturating_sub(s.issued) > ttl || s.issued > now.saturating_add(300) {
            return Err(OpenError::Expired);
        }
        if s.principal != principal {
            return Err(OpenError::OtherPrincipal);
        }
        Ok(s)
    }
}
