//! The `tocsin` binary.

use clap::Parser;

/// mimalloc instead of the system allocator: the server allocates and frees small strings
/// and rows on every request and evaluation, across threads. Under glibc's malloc that was
/// about 16% of the server bench's CPU samples (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tocsin=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match tocsin::cli::Cli::parse().run(&mut std::io::stdout().lock()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
