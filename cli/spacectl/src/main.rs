use clap::{Parser, Subcommand};
use spacectl::serve::{ServeOptions, serve};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(options) => {
            space_http::lambda::init_tracing();
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
    }
}
