//! Log setup: text or JSON lines on stderr, filtered like `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::server::observe::QUERY_LOG_TARGET;

/// hickory-server logs every query at INFO; kube-client logs every failed request at ERROR,
/// which the API source reports itself, once per outage (`source::kube::faults`).
const DEFAULT_FILTER: &str = "info,hickory_server=warn,kube_client=off";

/// The log format asked for on the command line or in the environment, read before the flags
/// are parsed, so that an error in the other flags is reported in it too.
pub fn asked_format() -> LogFormat {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--") => break,
            Some("--log-format") => {
                return format_named(args.next().as_deref().and_then(|a| a.to_str()));
            }
            Some(arg) if arg.starts_with("--log-format=") => {
                return format_named(arg.strip_prefix("--log-format="));
            }
            _ => {}
        }
    }
    format_named(std::env::var("HEADLESS_DNS_LOG_FORMAT").ok().as_deref())
}

fn format_named(name: Option<&str>) -> LogFormat {
    match name {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// The error that ends the process, as its last line: `headless-dns: MESSAGE`, or in JSON a
/// line shaped like the log's own, so that a log collector reads it as the error it is.
pub fn fatal(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("headless-dns: {message}"),
        LogFormat::Json => {
            use tracing_subscriber::fmt::format::Writer;
            use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
            let mut timestamp = String::new();
            let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
            let line = serde_json::json!({
                "timestamp": timestamp,
                "level": "ERROR",
                "fields": {"message": message},
                "target": "headless_dns",
            });
            eprintln!("{line}");
        }
    }
}

/// Sets up logging; with `log_queries`, the query lines are on whatever `RUST_LOG` says.
pub fn init(format: LogFormat, log_queries: bool) -> Result<(), String> {
    let mut filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| format!("invalid RUST_LOG {spec:?}: {e}"))?
        }
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    if log_queries {
        let directive = format!("{QUERY_LOG_TARGET}=info");
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}
