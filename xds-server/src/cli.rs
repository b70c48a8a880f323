//! Command-line flags, parsed by hand (four flags do not need a framework), with errors that
//! say which flag and why.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage:
  mcp-xds-server serve --config-dir DIR [--xds-addr ADDR] [--status-addr ADDR]
                       [--resend-interval DUR] [--poll-interval DUR] [--ready-file PATH] [--verbose]
  mcp-xds-server check FILE...             validate filter configs (or policies) exactly as the module
                                           does: every problem, with positions and hints (the same
                                           code as `mcp-policy check`)
  mcp-xds-server check --config-dir DIR    validate a whole source directory, print versions

  --xds-addr         ADS gRPC listen address (default 127.0.0.1:18000; port 0 = any free port)
  --status-addr      status/metrics HTTP address (default 127.0.0.1:18001; port 0 = any)
  --resend-interval  periodic full re-send to every Envoy (default 60s; 0s disables)
  --poll-interval    how often the directory is re-read when no file-system event came (default
                     250ms; events make an edit visible in tens of milliseconds)
  --ready-file       once listening, write {\"xds\": ADDR, \"status\": ADDR} here (JSON)
  DUR is a number with a unit: 500ms, 2s, 1m.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    pub config_dir: PathBuf,
    pub xds_addr: SocketAddr,
    pub status_addr: SocketAddr,
    pub resend_interval: Duration,
    pub poll_interval: Duration,
    pub ready_file: Option<PathBuf>,
    pub verbose: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve(ServeArgs),
    CheckFilters(Vec<PathBuf>),
    CheckDir(PathBuf),
    Help,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .ok_or_else(|| format!("{s:?} has no unit (use ms, s or m, e.g. 60s)"))?;
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a number followed by a unit"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    }
}

pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("missing command".into());
    };
    match cmd.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "check" => match rest {
            _ if rest.iter().any(|a| a == "-h" || a == "--help") => Ok(Command::Help),
            [] => Err("check: give filter config files, or --config-dir DIR".into()),
            [flag, dir] if flag == "--config-dir" => Ok(Command::CheckDir(dir.into())),
            [flag, ..] if flag == "--config-dir" => Err("check --config-dir takes exactly one directory".into()),
            files => match files.iter().find(|f| f.starts_with('-') && f.len() > 1) {
                // Never read a flag as a file name.
                Some(flag) => Err(format!("check: unknown flag {flag:?}")),
                None => Ok(Command::CheckFilters(files.iter().map(PathBuf::from).collect())),
            },
        },
        "serve" if rest.iter().any(|a| a == "-h" || a == "--help") => Ok(Command::Help),
        "serve" => parse_serve(rest).map(Command::Serve),
        other => Err(format!("unknown command {other:?}")),
    }
}

fn parse_serve(rest: &[String]) -> Result<ServeArgs, String> {
    let mut config_dir = None;
    let mut a = ServeArgs {
        config_dir: PathBuf::new(),
        xds_addr: "127.0.0.1:18000".parse().unwrap_or_else(|_| unreachable!()),
        status_addr: "127.0.0.1:18001".parse().unwrap_or_else(|_| unreachable!()),
        resend_interval: Duration::from_secs(60),
        poll_interval: Duration::from_millis(250),
        ready_file: None,
        verbose: false,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (flag.as_str(), None),
        };
        if name == "--verbose" || name == "-v" {
            a.verbose = true;
            continue;
        }
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let addr = |v: String| -> Result<SocketAddr, String> {
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not HOST:PORT with an IP host (e.g. 127.0.0.1:18000)"))
        };
        match name {
            "--config-dir" => config_dir = Some(PathBuf::from(value()?)),
            "--xds-addr" => a.xds_addr = addr(value()?)?,
            "--status-addr" => a.status_addr = addr(value()?)?,
            "--resend-interval" => a.resend_interval = parse_duration(&value()?).map_err(|e| format!("{name}: {e}"))?,
            "--poll-interval" => {
                a.poll_interval = parse_duration(&value()?).map_err(|e| format!("{name}: {e}"))?;
                if a.poll_interval.is_zero() {
                    return Err(format!("{name}: must be greater than 0"));
                }
            }
            "--ready-file" => a.ready_file = Some(PathBuf::from(value()?)),
            _ => return Err(format!("serve: unknown flag {name:?}")),
        }
    }
    a.config_dir = config_dir.ok_or("serve: --config-dir DIR is required")?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn serve_with_every_flag() {
        let Command::Serve(a) = parse(&args(
            "serve --config-dir d --xds-addr 127.0.0.1:0 --status-addr=127.0.0.1:0 --resend-interval 5s --poll-interval 100ms --ready-file r -v",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.config_dir, PathBuf::from("d"));
        assert_eq!(a.xds_addr.port(), 0);
        assert_eq!(a.resend_interval, Duration::from_secs(5));
        assert_eq!(a.poll_interval, Duration::from_millis(100));
        assert_eq!(a.ready_file, Some(PathBuf::from("r")));
        assert!(a.verbose);
    }

    #[test]
    fn bad_flags_say_which_and_why() {
        assert_eq!(
            parse(&args("serve")).unwrap_err(),
            "serve: --config-dir DIR is required"
        );
        assert!(parse(&args("serve --config-dir d --xds-addr localhost:1"))
            .unwrap_err()
            .starts_with("--xds-addr:"));
        assert!(parse(&args("serve --config-dir d --resend-interval 60"))
            .unwrap_err()
            .contains("no unit"));
        assert!(parse(&args("serve --config-dir d --resend-interval 1h"))
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse(&args("serve --config-dir d --bogus"))
            .unwrap_err()
            .contains("unknown flag \"--bogus\""));
        assert_eq!(
            parse(&args("serve --config-dir")).unwrap_err(),
            "--config-dir needs a value"
        );
        assert!(parse(&args("frobnicate")).unwrap_err().contains("unknown command"));
    }

    #[test]
    fn check_keeps_its_old_form_and_gains_a_directory_form() {
        assert_eq!(
            parse(&args("check a.json b.json")).unwrap(),
            Command::CheckFilters(vec!["a.json".into(), "b.json".into()])
        );
        assert_eq!(
            parse(&args("check --config-dir d")).unwrap(),
            Command::CheckDir("d".into())
        );
    }

    #[test]
    fn help_is_never_read_as_a_file() {
        assert_eq!(parse(&args("check --help")).unwrap(), Command::Help);
        assert_eq!(parse(&args("check a.json -h")).unwrap(), Command::Help);
        assert_eq!(parse(&args("serve --help")).unwrap(), Command::Help);
        assert_eq!(
            parse(&args("check --bogus")).unwrap_err(),
            "check: unknown flag \"--bogus\""
        );
    }
}
