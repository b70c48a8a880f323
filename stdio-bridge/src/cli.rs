//! Command line: `mcp-stdio-bridge --listen ADDR [options] -- <command> [args...]`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: mcp-stdio-bridge --listen 127.0.0.1:PORT [options] -- <command> [args...]

Runs <command> as a stdio MCP server (newline-delimited JSON-RPC on its stdin/stdout),
restarts it with back-off when it exits, and serves it over MCP Streamable HTTP.

options:
  --listen ADDR              address:port to listen on (port 0: the OS picks one)
  --path PATH                the MCP endpoint's path (default /mcp)
  --max-queue N              requests in flight to the child at once, all sessions (default 64)
  --request-timeout-ms N     how long a request may wait for the child's answer (default 60000)
  --max-sessions N           HTTP sessions kept at once; the least recently used idle one is
                             dropped to make room (default 1024)
  --allow-remote             allow a listen address that is not loopback
  -h, --help                 this text
  -V, --version              the version
";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub path: String,
    pub max_queue: usize,
    pub request_timeout: Duration,
    pub max_sessions: usize,
    pub allow_remote: bool,
    /// The child's program and arguments, never empty.
    pub command: Vec<OsString>,
}

impl Config {
    /// The child's command line for messages (lossy for non-UTF-8 arguments).
    pub fn command_line(&self) -> String {
        self.command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug)]
pub enum Parsed {
    Run(Config),
    Help,
    Version,
}

/// Parses the arguments after the program name. Errors are one line, naming the argument.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mut listen: Option<SocketAddr> = None;
    let mut path = "/mcp".to_string();
    let mut max_queue = 64usize;
    let mut timeout_ms = 60_000u64;
    let mut max_sessions = 1024usize;
    let mut allow_remote = false;
    let mut command = Vec::new();

    while let Some(arg) = args.next() {
        let arg = arg.into_string().map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        if arg == "--" {
            command.extend(args.by_ref());
            break;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| format!("{name} needs a value ({what})"))?
                    .into_string()
                    .map_err(|a| format!("the value of {name}, {a:?}, is not UTF-8")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--listen" => {
                let v = value("address:port")?;
                listen = Some(
                    v.parse()
                        .map_err(|e| format!("--listen {v}: not an address:port ({e})"))?,
                );
            }
            "--path" => {
                let v = value("a path such as /mcp")?;
                if !v.starts_with('/') || v.contains(['?', '#']) {
                    return Err(format!("--path {v}: must start with '/' and have no query or fragment"));
                }
                path = v;
            }
            "--max-queue" => max_queue = positive(&name, &value("a number")?)?,
            "--request-timeout-ms" => timeout_ms = positive(&name, &value("milliseconds")?)?,
            "--max-sessions" => max_sessions = positive(&name, &value("a number")?)?,
            "--allow-remote" if inline.is_none() => allow_remote = true,
            _ if name.starts_with('-') => return Err(format!("unknown option {name}")),
            _ => {
                return Err(format!(
                    "unexpected argument {arg:?}: put the child's command after `--`"
                ))
            }
        }
    }

    let listen = listen.ok_or("--listen is required (e.g. --listen 127.0.0.1:0)")?;
    if !listen.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "--listen {listen} is not a loopback address; the bridge has no authentication of its own, \
             so pass --allow-remote to listen there anyway"
        ));
    }
    if command.is_empty() {
        return Err("no child command: give it after `--`, e.g. -- npx @modelcontextprotocol/server-memory".into());
    }
    Ok(Parsed::Run(Config {
        listen,
        path,
        max_queue,
        request_timeout: Duration::from_millis(timeout_ms),
        max_sessions,
        allow_remote,
        command,
    }))
}

fn positive<T: std::str::FromStr + PartialOrd + From<u8>>(name: &str, v: &str) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("{name} {v}: must be a whole number of at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse(args.iter().map(OsString::from))? {
            Parsed::Run(c) => Ok(c),
            other => Err(format!("not a run: {other:?}")),
        }
    }

    #[test]
    fn full_command_line() {
        let c = run(&[
            "--listen",
            "127.0.0.1:0",
            "--path=/x/mcp",
            "--max-queue",
            "3",
            "--request-timeout-ms",
            "250",
            "--",
            "node",
            "server.js",
            "--listen",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.path, "/x/mcp");
        assert_eq!(c.max_queue, 3);
        assert_eq!(c.request_timeout, Duration::from_millis(250));
        assert_eq!(c.max_sessions, 1024);
        // Everything after `--` is the child's, even what looks like our options.
        assert_eq!(c.command, ["node", "server.js", "--listen"].map(OsString::from));
        assert_eq!(c.command_line(), "node server.js --listen");
    }

    #[test]
    fn non_loopback_needs_allow_remote() {
        let e = run(&["--listen", "0.0.0.0:8080", "--", "x"]).unwrap_err();
        assert!(
            e.contains("not a loopback address") && e.contains("--allow-remote"),
            "{e}"
        );
        let c = run(&["--listen", "0.0.0.0:8080", "--allow-remote", "--", "x"]).unwrap();
        assert!(c.allow_remote);
        assert!(run(&["--listen", "[::1]:9", "--", "x"]).is_ok());
    }

    #[test]
    fn refusals_name_the_argument() {
        for (args, needle) in [
            (&["--", "x"][..], "--listen is required"),
            (&["--listen", "127.0.0.1:0"][..], "no child command"),
            (&["--listen", "localhost:80", "--", "x"][..], "--listen localhost:80"),
            (
                &["--listen", "127.0.0.1:0", "--max-queue", "0", "--", "x"][..],
                "--max-queue 0",
            ),
            (
                &["--listen", "127.0.0.1:0", "--request-timeout-ms", "-5", "--", "x"][..],
                "--request-timeout-ms -5",
            ),
            (
                &["--listen", "127.0.0.1:0", "--path", "mcp", "--", "x"][..],
                "--path mcp",
            ),
            (
                &["--listen", "127.0.0.1:0", "--bogus", "--", "x"][..],
                "unknown option --bogus",
            ),
            (&["--listen", "127.0.0.1:0", "node"][..], "after `--`"),
            (&["--listen"][..], "--listen needs a value"),
        ] {
            let e = run(args).unwrap_err();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(["--help"].map(OsString::from)), Ok(Parsed::Help)));
        assert!(matches!(parse(["-V"].map(OsString::from)), Ok(Parsed::Version)));
    }
}
