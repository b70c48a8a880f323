//! The little of Redis this service needs: RESP2 over TCP, one script, a small pool of
//! connections (each used by one request at a time), reconnecting after any error.

use anyhow::{anyhow, bail, Context, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// A reply, as far as this service reads them.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Int(i64),
    Str(Option<Vec<u8>>),
    Array(Vec<Reply>),
    Status(String),
}

pub struct Pool {
    addr: String,
    conns: Vec<Mutex<Option<BufReader<TcpStream>>>>,
    next: AtomicUsize,
    timeout: Duration,
}

impl Pool {
    pub fn new(addr: &str, size: usize, timeout: Duration) -> Pool {
        Pool {
            addr: addr.to_owned(),
            conns: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            timeout,
        }
    }

    /// Run one command; any error drops the connection (the next call reconnects).
    pub async fn call(&self, args: &[&[u8]]) -> Result<Reply> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        let mut slot = self.conns[i].lock().await;
        let r = tokio::time::timeout(self.timeout, async {
            if slot.is_none() {
                let s = TcpStream::connect(&self.addr)
                    .await
                    .with_context(|| format!("connecting to Redis at {}", self.addr))?;
                s.set_nodelay(true)?;
                *slot = Some(BufReader::new(s));
            }
            let conn = slot.as_mut().ok_or_else(|| anyhow!("no connection"))?;
            let mut out = Vec::with_capacity(64);
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
            conn.get_mut().write_all(&out).await?;
            read_reply(conn).await
        })
        .await
        .map_err(|_| anyhow!("Redis at {} did not answer within {:?}", self.addr, self.timeout))
        .and_then(|r| r);
        if r.is_err() {
            *slot = None;
        }
        r
    }
}

fn read_reply(
    conn: &mut BufReader<TcpStream>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply>> + Send + '_>> {
    Box::pin(async move {
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            bail!("Redis closed the connection");
        }
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1.min(line.len()));
        match kind {
            "+" => Ok(Reply::Status(rest.to_owned())),
            "-" => bail!("Redis error: {rest}"),
            ":" => Ok(Reply::Int(rest.parse().context("Redis integer")?)),
            "$" => {
                let n: i64 = rest.parse().context("Redis bulk length")?;
                if n < 0 {
                    return Ok(Reply::Str(None));
                }
                let mut buf = vec![0u8; n as usize + 2];
                conn.read_exact(&mut buf).await?;
                buf.truncate(n as usize);
                Ok(Reply::Str(Some(buf)))
            }
            "*" => {
                let n: i64 = rest.parse().context("Redis array length")?;
                let mut items = Vec::with_capacity(n.max(0) as usize);
                for _ in 0..n.max(0) {
                    items.push(read_reply(conn).await?);
                }
                Ok(Reply::Array(items))
            }
            _ => bail!("unexpected Redis reply {line:?}"),
        }
    })
}
