//! The `portcullis` command: serve, migrate, check-config, hash-password, gen-cert.
#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use portcullis::config::Config;
use portcullis::service::bootstrap::AdminPassword;
use portcullis::service::credentials::{hash_blocking, MAX_SECRET_BYTES};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Multi-tenant OAuth 2.0 authorization server and introspection gateway"
)]
struct Cli {
    /// Configuration file (default: portcullis.toml in the working directory, if present).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and every tenant file, then exit.
    CheckConfig,
    /// Read one secret from standard input and print its argon2id PHC string.
    HashPassword,
    /// Write a self-signed certificate and key (server.crt, server.key) into a folder.
    GenCert {
        #[arg(long)]
        out: PathBuf,
        /// Host names and addresses the certificate covers, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1,::1")]
        hosts: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::HashPassword => hash_password(),
        Command::GenCert { out, hosts } => {
            let (cert, key) = (out.join("server.crt"), out.join("server.key"));
            portcullis::server::tls::generate(&cert, &key, &hosts)?;
            println!("wrote {} and {}", cert.display(), key.display());
            Ok(())
        }
        Command::CheckConfig => {
            let config = Config::load(cli.config.as_deref())?;
            let files = portcullis::tenant_file::load_dir(&config.tenants.dir)?;
            println!(
                "configuration is valid; {} tenant file(s) in {}",
                files.len(),
                config.tenants.dir.display()
            );
            Ok(())
        }
        Command::Migrate => {
            let config = Config::load(cli.config.as_deref())?;
            runtime()?.block_on(async {
                let store = portcullis::store::connect(&config.database.url).await?;
                store.migrate().await?;
                println!("migrations applied");
                anyhow::Ok(())
            })
        }
        Command::Serve => {
            let config = Arc::new(Config::load(cli.config.as_deref())?);
            let _flushed_at_exit = portcullis::init_logging(config.log.format);
            runtime()?.block_on(serve(config))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn serve(config: Arc<Config>) -> anyhow::Result<()> {
    let tls = portcullis::tls_acceptor(&config)?;
    let admin_password = std::env::var("PORTCULLIS_ADMIN_PASSWORD").ok();
    let (gateway, admin) = portcullis::prepare(config.clone(), admin_password).await?;
    match admin {
        AdminPassword::Generated(password) => {
            // Printed once, on standard error only, never logged.
            eprintln!("\n  Created the super tenant's administrator.\n  username: admin\n  password: {password}\n  (shown once; set PORTCULLIS_ADMIN_PASSWORD to choose it)\n");
        }
        AdminPassword::FromEnvironment => tracing::info!(
            "created the super tenant's administrator from PORTCULLIS_ADMIN_PASSWORD"
        ),
        AdminPassword::Existing => {}
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %listener.local_addr()?, scheme, "listening");
    let grace = std::time::Duration::from_millis(config.server.shutdown_grace_ms);
    let draining = gateway.clone();
    let shutdown = async move {
        termination().await;
        tracing::info!("shutting down: readiness is now 503");
        draining.start_draining();
        tokio::time::sleep(grace).await;
    };
    portcullis::serve(listener, gateway.clone(), tls, shutdown).await?;
    gateway.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn hash_password() -> anyhow::Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_SECRET_BYTES as u64 + 3)
        .read_to_end(&mut input)?;
    let mut secret = String::from_utf8(input).context("the secret is not UTF-8")?;
    // One trailing newline (from `echo` or a terminal) is not part of the secret.
    if secret.ends_with('\n') {
        secret.pop();
        if secret.ends_with('\r') {
            secret.pop();
        }
    }
    if secret.is_empty() {
        bail!("no secret on standard input");
    }
    if secret.len() > MAX_SECRET_BYTES {
        bail!("the secret is longer than {MAX_SECRET_BYTES} bytes");
    }
    println!("{}", hash_blocking(&secret)?);
    Ok(())
}
