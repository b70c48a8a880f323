//! Signed checkpoints: an Ed25519 signature over the chain head (`seq`, `hash`) at a time,
//! with the signing key's id. Written to the checkpoint file beside the segments and pushed
//! to every anchor (a second location the log's writer cannot rewrite), so that rewriting
//! history or cutting the tail is caught by `verify` even when the attacker can write the
//! segments.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub v: u32,
    /// The last record covered (the chain head when signed).
    pub seq: u64,
    pub hash: String,
    /// Segment file that holds record `seq`.
    pub segment: String,
    pub time: String,
    pub key_id: String,
    /// Base64 Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub sig: String,
}

impl Checkpoint {
    pub fn signed_bytes(seq: u64, hash: &str, segment: &str, time: &str, key_id: &str) -> Vec<u8> {
        format!("mcp-audit-checkpoint/v1\n{seq}\n{hash}\n{segment}\n{time}\n{key_id}\n").into_bytes()
    }

    pub fn sign(key: &Key, seq: u64, hash: &str, segment: &str) -> Checkpoint {
        let time = crate::time::now();
        let sig = key
            .signing
            .sign(&Self::signed_bytes(seq, hash, segment, &time, &key.id));
        Checkpoint {
            v: 1,
            seq,
            hash: hash.to_string(),
            segment: segment.to_string(),
            time,
            key_id: key.id.clone(),
            sig: B64.encode(sig.to_bytes()),
        }
    }

    /// Does the signature hold under `public`?
    pub fn verify(&self, public: &PublicKey) -> bool {
        if self.key_id != public.id {
            return false;
        }
        let Ok(bytes) = B64.decode(&self.sig) else { return false };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            return false;
        };
        public
            .key
            .verify(
                &Self::signed_bytes(self.seq, &self.hash, &self.segment, &self.time, &self.key_id),
                &sig,
            )
            .is_ok()
    }
}

/// Key id: the first 16 hex digits of SHA-256 of the raw public key.
pub fn key_id(public: &VerifyingKey) -> String {
    crate::hex(&Sha256::digest(public.as_bytes()))[..16].to_string()
}

pub struct Key {
    pub signing: SigningKey,
    pub id: String,
}

#[derive(Clone)]
pub struct PublicKey {
    pub key: VerifyingKey,
    pub id: String,
}

const SECRET_TAG: &str = "mcp-audit-ed25519-secret:";
const PUBLIC_TAG: &str = "mcp-audit-ed25519-public:";

fn read_tagged(path: &Path, tag: &str) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let b64 = text.trim().strip_prefix(tag).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: not an mcp-audit key file (expected `{tag}<base64>`)",
            path.display()
        )
    })?;
    let bytes = B64
        .decode(b64.trim())
        .map_err(|e| anyhow::anyhow!("{}: bad base64: {e}", path.display()))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: an Ed25519 key is 32 bytes", path.display()))
}

impl Key {
    pub fn generate() -> anyhow::Result<Key> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        Ok(Key::from_seed(seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> Key {
        let signing = SigningKey::from_bytes(&seed);
        let id = key_id(&signing.verifying_key());
        Key { signing, id }
    }

    pub fn load(path: &Path) -> anyhow::Result<Key> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                anyhow::bail!(
                    "{}: signing key is readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        Ok(Key::from_seed(read_tagged(path, SECRET_TAG)?))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.signing.verifying_key(),
            id: self.id.clone(),
        }
    }

    /// Write the secret (mode 0600, refusing to overwrite) and the public key beside it.
    pub fn write(&self, secret: &Path, public: &Path) -> anyhow::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(secret)
            .map_err(|e| anyhow::anyhow!("{}: {e}", secret.display()))?;
        writeln!(f, "{SECRET_TAG}{}", B64.encode(self.signing.to_bytes()))?;
        f.sync_all()?;
        std::fs::write(
            public,
            format!("{PUBLIC_TAG}{}\n", B64.encode(self.signing.verifying_key().as_bytes())),
        )?;
        Ok(())
    }
}

impl PublicKey {
    pub fn load(path: &Path) -> anyhow::Result<PublicKey> {
        let bytes = read_tagged(path, PUBLIC_TAG)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(PublicKey { id: key_id(&key), key })
    }
}

/// Append one checkpoint line to `path` and fsync it.
pub fn append(path: &Path, cp: &Checkpoint) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    let mut line = serde_json::to_string(cp).expect("a Checkpoint always serialises");
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Read every checkpoint line of `path`; unparseable lines are returned as errors with their
/// line number (a torn last line from a crash shows here too).
pub fn read_all(path: &Path) -> std::io::Result<Vec<Result<Checkpoint, String>>> {
    let f = File::open(path)?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = Key::from_seed([7; 32]);
        let cp = Checkpoint::sign(&k, 10, "ab", "segment-000001.log");
        assert!(cp.verify(&k.public()));
        let mut forged = cp.clone();
        forged.seq = 9;
        assert!(!forged.verify(&k.public()), "a changed field breaks the signature");
        let other = Key::from_seed([8; 32]);
        assert!(!cp.verify(&other.public()), "another key does not verify");
    }
}
