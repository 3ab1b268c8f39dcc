//! `labelport serve`: the API router on localhost over the embedded backends.

use crate::embedded::Embedded;
use crate::presign::serve_file;
use axum::routing::get;
use labelport_generate::{self as generate, Config};
use labelport_model::Mode;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Options of `labelport serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (keep it on loopback: the local key signs every token).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The data folder.
    #[arg(long, default_value = "labelport-data")]
    data: PathBuf,
}

/// Serves until interrupted.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let projects = args.data.join("projects");
    let empty = std::fs::read_dir(&projects).map_or(true, |mut d| d.next().is_none());
    if empty {
        let summary = generate::write_project(
            &Config::new("demo", Mode::Classification, 10_000, 1),
            &args.data,
        )?;
        println!(
            "seeded project `demo` with {} tasks in {}",
            summary.tasks,
            projects.display()
        );
    }
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let public_url = format!("http://{}", listener.local_addr()?);
    let embedded = Embedded::open(&args.data, &public_url)?;
    let files = axum::Router::new()
        .route("/local/files/{*key}", get(serve_file))
        .with_state(embedded.presigner.clone());
    let router = labelport_core::api::router(embedded.api.clone()).merge(files);
    tokio::spawn(embedded.run_forever());
    println!(
        "labelport API on {public_url} (data in {})\n\
         TOKEN=$(labelport token --email manager@example.com --data {})\n\
         curl -X POST {public_url}/v1/projects/demo/exports -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"format\":\"CSV\"}}'",
        args.data.display(),
        args.data.display()
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
