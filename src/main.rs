use clap::Parser;
use meff::cli::{self, args::Cli};
use tracing_subscriber::EnvFilter;

fn main() {
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
