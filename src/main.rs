use clap::Parser;
use meff::cli::{self, args::Cli};
use tracing_subscriber::EnvFilter;

/// Two malloc arenas rather than glibc's eight per core: a peer's threads (runtime workers,
/// blocking pool, database writer) each freed into an arena of its own, and a peer of
/// 100,000 tracks in a mesh kept 465 MiB resident instead of 383 (`benches/catalog_scale.sh`).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() {
    limit_malloc_arenas();
    let cli = Cli::parse_from(cli::args::normalize_args(std::env::args().collect()));
    let default = match cli.verbose {
        // Library lines (symphonia's, quinn's) stay out of a user's terminal unless asked for.
        0 => "meff=warn,off",
        1 => "meff=info,warn",
        _ => "meff=debug,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
