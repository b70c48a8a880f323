//! mcp-xds-server: `serve` (the ADS control plane) and `check` (validate offline with exactly
//! the code the Envoy module runs). Wiring only; see `lib.rs` for the layout.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mcp_xds::cli::{self, Command, ServeArgs};
use mcp_xds::snapshot::TYPES;
use mcp_xds::source::SourceFiles;
use mcp_xds::state::Shared;
use mcp_xds::{log, server, status, watch};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-xds-server: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match cmd {
        Command::Help => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::CheckFilters(files) => check_filters(&files),
        Command::CheckDir(dir) => check_dir(&dir),
        Command::Serve(a) => match serve(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error(&format!("{e:#}"));
                ExitCode::FAILURE
            }
        },
    }
}

/// `check FILE...`: the very function `mcp-policy check` runs (mcp_policy_core::workbench).
fn check_filters(files: &[std::path::PathBuf]) -> ExitCode {
    use mcp_policy_core::workbench::check;
    let mut ok = true;
    for f in files {
        let name = f.display().to_string();
        match std::fs::read(f) {
            Err(e) => {
                eprintln!("{name}: cannot read: {e}");
                ok = false;
            }
            Ok(bytes) => {
                let report = check::check(&bytes, check::detect(&bytes));
                ok &= report.ok();
                print!("{}", check::render(&name, &report));
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn check_dir(dir: &Path) -> ExitCode {
    match SourceFiles::read_dir(dir).and_then(|f| watch::load(&f)) {
        Ok(world) => {
            println!("{}: ok, snapshot {}", dir.display(), world.version);
            for s in world.snapshots() {
                println!(
                    "  group {}: version {}",
                    s.group.as_deref().unwrap_or("(ungrouped)"),
                    s.version
                );
                for t in TYPES {
                    println!("    {:<4} {}", mcp_xds::snapshot::short_name(t), s.names(t).join(", "));
                }
            }
            for w in &world.warnings {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    log::set_verbose(a.verbose);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve_async(a))
}

async fn serve_async(a: ServeArgs) -> anyhow::Result<()> {
    // A directory that is not there is a mistake, not a world that is still empty: say so and
    // stop, instead of serving nothing forever. (An existing directory with invalid files is
    // served once they are valid, and its problems are logged and on /status.)
    match std::fs::metadata(&a.config_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => anyhow::bail!("--config-dir {}: not a directory", a.config_dir.display()),
        Err(e) => anyhow::bail!("--config-dir {}: {e}", a.config_dir.display()),
    }
    let resend_ms = u64::try_from(a.resend_interval.as_millis()).unwrap_or(u64::MAX);
    let shared = Arc::new(Shared::new(a.config_dir.display().to_string(), resend_ms));

    // First load, before listening: an Envoy connecting right away gets a world (if valid).
    let mut loader = watch::Loader::default();
    let first = SourceFiles::read_dir(&a.config_dir);
    watch::act(loader.observe(first, false), &shared);

    let xds = tokio::net::TcpListener::bind(a.xds_addr)
        .await
        .with_context(|| format!("--xds-addr {}: cannot listen", a.xds_addr))?;
    let status_l = tokio::net::TcpListener::bind(a.status_addr)
        .await
        .with_context(|| format!("--status-addr {}: cannot listen", a.status_addr))?;
    let xds_addr = xds.local_addr()?;
    let status_addr = status_l.local_addr()?;
    log::info(&format!(
        "serving ADS (SotW: LDS RDS CDS EDS ECDS) and MetricsService on {xds_addr}, status on http://{status_addr}/status, source {}",
        a.config_dir.display()
    ));

    // Effectively "never" when re-send is disabled.
    let resend = if a.resend_interval.is_zero() {
        std::time::Duration::from_secs(100 * 365 * 24 * 3600)
    } else {
        a.resend_interval
    };
    let ads = server::Ads::new(shared.clone(), resend).into_service();
    let grpc = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(ads)
        .add_service(server::Metrics::new(shared.clone()).into_service())
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(xds));
    tokio::spawn(status::serve(status_l, shared.clone()));
    tokio::spawn(watch::run(
        a.config_dir.clone(),
        loader,
        a.poll_interval,
        shared.clone(),
    ));

    if let Some(path) = &a.ready_file {
        let body = serde_json::json!({
            "xds": xds_addr.to_string(),
            "status": status_addr.to_string(),
            "pid": std::process::id(),
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body.to_string()).with_context(|| format!("--ready-file {}", path.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("--ready-file {}", path.display()))?;
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = grpc => r.context("ADS server failed")?,
        _ = tokio::signal::ctrl_c() => log::info("interrupted; exiting"),
        _ = term.recv() => log::info("terminated; exiting"),
    }
    Ok(())
}
