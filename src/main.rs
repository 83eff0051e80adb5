//! The `headless-dns` binary: flags, logging, and running until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use headless_dns::config::{Command, Config};
use headless_dns::logging;

/// glibc's malloc keeps the memory freed after a large load or re-list resident (900 MB after
/// loading 100k pods, for 195 MB of live data); mimalloc returns it to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` (mimalloc v3's `mimalloc.h`; the
/// Rust bindings predate them).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc commits its first arena up front on Linux, and that arena is made by the first
/// allocation, before `main`. Committed on demand instead, RSS follows what the data uses (on
/// the demo cluster 9.6 MB instead of 16 MB; at 100k pods 74 MB instead of 82 MB). So the option
/// is set by a process constructor, which runs before the Rust runtime allocates anything.
///
/// Freed pages are returned at once rather than after 10 ms: a delayed return happens only when
/// the thread that freed them allocates again, and after a bulk load that thread sits idle (at
/// 100k pods 50 MB instead of 52-57 MB). The answer path allocates nothing, so this costs it
/// nothing.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static SET_ALLOCATOR_OPTIONS: extern "C" fn() = {
    extern "C" fn set_allocator_options() {
        // SAFETY: sets a plain integer option; it allocates nothing and has no preconditions.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
    set_allocator_options
};

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(error) => return flag_error(error),
    };
    let format = config.log_format;
    if let Err(message) = logging::init(format, config.log_queries) {
        logging::fatal(format, &message);
        return ExitCode::from(2);
    }
    log_panics_sparingly();
    match headless_dns::raise_descriptor_limit() {
        Ok((limit, Some(before))) => {
            tracing::info!(from = before, to = limit, "raised the open-file limit")
        }
        Ok((limit, None)) => tracing::debug!(limit, "open-file limit already at its maximum"),
        Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            logging::fatal(format, &format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            logging::fatal(format, &message);
            ExitCode::FAILURE
        }
    }
}

/// A bad flag is one line like every other error that stops the process (`headless-dns: ...`,
/// or a JSON line with JSON logs): clap's message and its tips, without the usage that follows.
/// `--help` and `--version` print as usual.
fn flag_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational {
        error.exit();
    }
    let message = format!(
        "{} (headless-dns --help lists the flags)",
        one_line(&error.render().to_string())
    );
    logging::fatal(logging::asked_format(), &message);
    ExitCode::from(2)
}

/// clap's rendering of an error (`error: ...`, indented details and tips, then `Usage:` and a
/// pointer to `--help`) as one line.
fn one_line(rendered: &str) -> String {
    let mut line = String::new();
    for part in rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
    {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part);
    }
    line.strip_prefix("error: ").unwrap_or(&line).to_owned()
}
async fn run(config: &Config) -> Result<(), String> {
    if let Some(Command::Explain { name, qtype, json }) = &config.command {
        let report = headless_dns::explain(config, name, qtype).await?;
        if *json {
            let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
            println!("{json}");
        } else {
            print!("{report}");
        }
        return Ok(());
    }
    let running = headless_dns::start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown_after(config.lameduck).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Panics go to the log (not raw to stderr), at most one a minute: a message that makes the
/// server panic may be sent again and again, and each costs only itself (see
/// headless-dns's `server::responder::contained`).
fn log_panics_sparingly() {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static LAST: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    std::panic::set_hook(Box::new(|info| {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match &mut *last {
            Some((at, suppressed)) if now.duration_since(*at) < Duration::from_secs(60) => {
                *suppressed += 1;
            }
            _ => {
                let suppressed = last.map_or(0, |(_, n)| n);
                let thread = std::thread::current();
                tracing::error!(
                    thread = thread.name().unwrap_or("unnamed"),
                    panic = %info,
                    suppressed,
                    "panicked (a bug: please report it); the message being answered is lost"
                );
                *last = Some((now, 0));
            }
        }
    }));
}
