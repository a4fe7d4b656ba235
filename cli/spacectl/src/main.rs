use std::io::IsTerminal as _;

use clap::{Parser, Subcommand};
use spacectl::client::{Input, Io};
use spacectl::serve::{ServeOptions, serve};

/// jemalloc for the long-running, many-threaded local server: under load glibc's malloc
/// spent a fifth of the server's CPU (measured: MCP tools/call +25%, authenticated GET +10%
/// with jemalloc, RSS flat over a 60 s soak). The Lambda binaries keep the system
/// allocator: one request at a time, where cold start and size count more.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Space API on your machine.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every family and the account API on one port.
    Serve(ServeOptions),
    /// Print the OpenAPI document.
    Openapi,
    /// Print the deployment manifest (committed as infra/manifest.json).
    Manifest,
    #[command(flatten)]
    Owner(spacectl::client::Command),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(options) => {
            // One log line per request, written out in batches by a background thread;
            // the guard writes what is left when `serve` returns.
            let (writer, _flush_on_exit) = spacectl::log_sink::batched(std::io::stdout())?;
            space_http::log::init(writer);
            serve(options).await
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&spacectl::openapi())?);
            Ok(())
        }
        Command::Manifest => {
            print!("{}", spacectl::manifest::to_json(&spacectl::manifest::manifest()));
            Ok(())
        }
        Command::Owner(command) => {
            let mut stdin = std::io::BufReader::new(std::io::stdin());
            let input = if std::io::stdin().is_terminal() {
                Input::Terminal
            } else {
                Input::Piped(&mut stdin)
            };
            let io = Io {
                input,
                out: &mut std::io::stdout(),
                err: &mut std::io::stderr(),
                stop: Box::pin(async {
                    let _ = tokio::signal::ctrl_c().await;
                }),
            };
            let code = spacectl::client::execute(command, io).await;
            std::process::exit(code)
        }
    }
}
