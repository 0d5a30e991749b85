//! The `relayrace` command: serve the relay, check a config, or watch a running relay.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use relayrace::Relay;
use relayrace::cli::remote::{self, Remote};
use relayrace::config::{self, Config, Resolved};

/// jemalloc: the relay allocates small, short-lived buffers on every request from its worker,
/// log and blocking threads; measured +20 % throughput over glibc's allocator at 32 connections
/// (bench/run.sh, then with two workers), with idle memory still under 12 MB (mimalloc gave the
/// same speed at twice the idle memory).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An Anthropic Messages API relay that fails over between providers by racing them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the relay.
    Serve {
        /// The YAML config file (`RELAYRACE__…` variables override it).
        #[arg(long, short, default_value = "config.example.yaml")]
        config: PathBuf,
        /// Listen address, overriding `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a config and print the resolved providers and the models each serves, secrets
    /// masked; warn about models Claude Code requests by default that none serves.
    Check {
        /// The YAML config file.
        #[arg(long, short, default_value = "config.example.yaml")]
        config: PathBuf,
    },
    /// Watch a running relay: health transitions and failovers, one line each, with the
    /// providers' table kept up to date below them on a terminal.
    Watch(Remote),
    /// Print a running relay's providers: state, since, failures, requests, failovers, latency,
    /// and the models each serves.
    Status(Remote),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config, listen } => {
            let (config, resolved) = match prepare(&config) {
                Ok(prepared) => prepared,
                Err(message) => return fail(&message),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(config.server.workers)
                .enable_all()
                .build();
            run(runtime, serve(config, resolved, listen))
        }
        Command::Check { config } => check(config),
        // A client of a running relay: one thread is plenty.
        Command::Watch(remote) => run(current_thread(), watch(&remote)),
        Command::Status(remote) => run(current_thread(), status(&remote)),
    }
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn run(
    runtime: std::io::Result<tokio::runtime::Runtime>,
    command: impl std::future::Future<Output = ExitCode>,
) -> ExitCode {
    match runtime {
        Ok(runtime) => runtime.block_on(command),
        Err(error) => fail(&format!("cannot start the async runtime: {error}")),
    }
}

/// Loads, validates and resolves a config; on failure prints every problem.
fn prepare(path: &Path) -> Result<(Config, Resolved), String> {
    let config = config::load(path).map_err(|e| e.to_string())?;
    let errors = config.validate();
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        return Err(format!(
            "invalid config {}:\n{}",
            path.display(),
            lines.join("\n")
        ));
    }
    let resolved = config
        .resolve(|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    Ok((config, resolved))
}

fn check(path: PathBuf) -> ExitCode {
    match prepare(&path) {
        Ok((config, resolved)) => {
            let description = config::describe(&resolved, &config);
            let mut out = std::io::stdout().lock();
            let _ = std::io::Write::write_all(&mut out, description.as_bytes());
            ExitCode::SUCCESS
        }
        Err(message) => fail(&message),
    }
}

async fn serve(mut config: Config, resolved: Resolved, listen: Option<SocketAddr>) -> ExitCode {
    let _log_lines = match relayrace::telemetry::init(&config.logging) {
        Ok(guard) => guard,
        Err(error) => return fail(&format!("could not start the log writer: {error}")),
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    for skipped in &resolved.skipped {
        tracing::warn!(
            provider = %skipped.name,
            env_var = %skipped.env_var,
            "provider skipped: its key variable is not set"
        );
    }
    let relay = match Relay::start(&config, &resolved).await {
        Ok(relay) => relay,
        Err(error) => return fail(&error.to_string()),
    };
    let listener = match bind(config.server.listen).await {
        Ok(listener) => listener,
        Err(message) => return fail(&message),
    };
    let admin = match config.server.admin_listen {
        Some(addr) => match bind(addr).await {
            Ok(listener) => Some(listener),
            Err(message) => return fail(&message),
        },
        None => None,
    };
    let operator = config.server.admin_listen.unwrap_or(config.server.listen);
    if !operator.ip().is_loopback() && resolved.admin_key.is_none() {
        tracing::warn!(
            listen = %operator,
            "operator endpoints (/status, /metrics, /v1/relay/events) are served beyond loopback \
             without clients.admin_key_env"
        );
    }
    let names: Vec<&str> = resolved
        .providers
        .iter()
        .map(|p| p.config.name.as_str())
        .collect();
    tracing::info!(
        listen = %config.server.listen,
        workers = config.server.workers,
        strategy = config.routing.strategy.name(),
        admin_listen = %operator,
        providers = ?names,
        "relayrace listening"
    );
    match admin {
        Some(admin) => relay.serve_split(listener, admin, shutdown_signal()).await,
        None => relay.serve(listener, shutdown_signal()).await,
    }
    tracing::info!("relayrace stopped");
    ExitCode::SUCCESS
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))
}

async fn watch(remote: &Remote) -> ExitCode {
    match remote::watch(remote).await {
        Ok(()) => {
            eprintln!("relayrace: the relay ended the event stream (it is shutting down)");
            ExitCode::SUCCESS
        }
        Err(message) => fail(&message),
    }
}

async fn status(remote: &Remote) -> ExitCode {
    match remote::status(remote).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn fail(message: &str) -> ExitCode {
    eprintln!("relayrace: {message}");
    ExitCode::from(2)
}
