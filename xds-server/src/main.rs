//! mcp-xds-server: the control plane for MCP policy for Envoy.
//!
//! Today it offers `check`, which validates a filter configuration with exactly the code the
//! Envoy module runs at load time (so a config that passes here is one Envoy accepts). The ADS
//! server (LDS/RDS/CDS/EDS/ECDS over tonic) is tracked as its own issue and lands here.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, files @ ..] if cmd == "check" && !files.is_empty() => {
            let mut ok = true;
            for f in files {
                match std::fs::read(f) {
                    Err(e) => {
                        eprintln!("{f}: cannot read: {e}");
                        ok = false;
                    }
                    Ok(bytes) => match mcp_policy_core::config::FilterConfig::from_json(&bytes) {
                        Ok(_) => println!("{f}: ok"),
                        Err(errors) => {
                            eprintln!("{f}: {errors}");
                            ok = false;
                        }
                    },
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!("usage: mcp-xds-server check <filter-config.json>...");
            ExitCode::from(2)
        }
    }
}
