//! `xietong`: `up` runs the local topology with a demo feed; `node` runs one node.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: measured on a province's hand-over (docs/benchmarks.md),
/// glibc's spent a sixth of a node's main thread consolidating and searching its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "xietong",
    about = "Tiered command and dispatch for market regulation (协同指挥调度)",
    version = node::BUILD_VERSION
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Start the default local topology (4 groups of 3 nodes) on loopback.
    Up(node::up::UpArgs),
    /// Operate a group: membership (add a learner, promote, remove), backup, restore.
    Admin(node::admin_cli::AdminArgs),
    /// Run one node from its configuration file.
    Node {
        #[arg(long)]
        config: PathBuf,
    },
    /// The double-random draw: verify a committed draw, generate a synthetic directory.
    Draw(node::draw_cli::DrawArgs),
    /// Check a configuration before a start: `xietong check config FILE`.
    Check(node::check_cli::CheckArgs),
    /// Run a console gateway: serves a group's consoles from its Redis Stream.
    Gateway {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Commands::Node { .. } | Commands::Gateway { .. } => {} // their config says how to log
        _ => node::logging::init(config::LogFormat::Text),
    }
    match cli.command {
        Commands::Up(args) => {
            // The launcher only supervises children and feeds demo traffic: one thread is plenty.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(with_stop_signal(|shutdown| node::up::run(args, shutdown)))
        }
        Commands::Admin(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(node::admin_cli::run(args))
        }
        Commands::Check(args) => {
            if !node::check_cli::run(args) {
                std::process::exit(1);
            }
            Ok(())
        }
        Commands::Draw(args) => {
            if !node::draw_cli::run(args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Commands::Gateway { config } => {
            let (config, users) = config::gateway::GatewayConfig::load(&config)?;
            node::logging::init(config.log.format);
            // One thread, as for the nodes: measured faster when processes share few cores.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(with_stop_signal(|shutdown| node::gateway::run(config, users, shutdown)))
        }
        Commands::Node { config } => {
            let (config, users) = config::NodeConfig::load(&config)?;
            node::logging::init(config.log.format);
            let runtime = match config.worker_threads {
                1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
                threads => tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?,
            };
            runtime.block_on(with_stop_signal(|shutdown| node::runtime::run(config, users, shutdown)))
        }
    }
}

/// Runs `work` with a token that fires on Ctrl-C or SIGTERM.
async fn with_stop_signal<F, Fut>(work: F) -> anyhow::Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        on_signal.cancel();
    });
    work(shutdown).await
}

async fn wait_for_stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
