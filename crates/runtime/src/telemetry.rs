//! Logging: human-readable by default, JSON with `RUNLEDGER_LOG_FORMAT=json`; `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `default_level` applies when `RUST_LOG` is not set.
pub fn init(format: &str, default_level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Postgres NOTICEs ("schema ... does not exist, skipping") are noise at info.
        EnvFilter::new(format!("{default_level},sqlx::postgres::notice=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("RUNLEDGER_LOG_FORMAT must be text or json, got {other:?}"),
    }
    Ok(())
}
