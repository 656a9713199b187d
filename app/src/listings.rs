//! The `list` commands of `runledger machine|venv|test-case`: read-model rows from
//! runledger-readmodel, printed tab-separated under a header line.

use crate::settings::Settings;
use serde_json::Value;

/// The read models, for the `list` commands.
async fn read_pool(settings: &Settings) -> anyhow::Result<runledger_readmodel::PgPool> {
    settings
        .database
        .connect(crate::database::DbUser::Owner, 2)
        .await
}

/// Prints `rows` under `headers`, tab-separated.
fn print_table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    println!("{}", headers.join("\t"));
    for cells in rows {
        println!("{}", cells.join("\t"));
    }
}

/// `runledger machine list`: id, name, address, OS, owner, labels, whether retired.
pub async fn machines(settings: &Settings) -> anyhow::Result<()> {
    let machines = runledger_readmodel::lab::machines(&read_pool(settings).await?).await?;
    let rows = machines.into_iter().map(|m| {
        vec![
            m.machine_id.to_string(),
            m.name,
            format!("{}:{}", m.host, m.port),
            m.os,
            m.owner,
            m.labels.join(","),
            if m.retired { "retired" } else { "" }.to_owned(),
        ]
    });
    print_table(
        &["MACHINE", "NAME", "ADDRESS", "OS", "OWNER", "LABELS", ""],
        rows,
    );
    Ok(())
}

/// `runledger venv list`: id, name, machine, status, the run holding it, Python version.
pub async fn venvs(settings: &Settings) -> anyhow::Result<()> {
    let venvs = runledger_readmodel::lab::venvs(&read_pool(settings).await?).await?;
    let rows = venvs.into_iter().map(|v| {
        vec![
            v.venv_id.to_string(),
            v.name,
            v.machine_id.to_string(),
            v.status.as_str().to_owned(),
            v.run_id.map(|id| id.to_string()).unwrap_or_default(),
            v.python_version.unwrap_or_default(),
        ]
    });
    print_table(
        &["VENV", "NAME", "MACHINE", "STATUS", "RUN", "PYTHON"],
        rows,
    );
    Ok(())
}

/// `runledger test-case list`: id, name, command (or Jenkins job), timeout, retries.
pub async fn test_cases(settings: &Settings) -> anyhow::Result<()> {
    let test_cases = runledger_readmodel::lab::test_cases(&read_pool(settings).await?).await?;
    let rows = test_cases.into_iter().map(|t| {
        // A Jenkins job shows as `jenkins: <url> <job>`.
        let jenkins = t.jenkins.as_ref().and_then(|job| {
            let field = |name: &str| job.get(name).filter(|value| !value.is_null());
            let (url, name) = (field("url")?, field("job")?);
            Some(format!("jenkins: {} {}", text(url), text(name)))
        });
        vec![
            t.test_case_id.to_string(),
            t.name,
            t.command.or(jenkins).unwrap_or_default(),
            t.timeout_s.to_string(),
            t.retries.to_string(),
        ]
    });
    print_table(
        &["TEST CASE", "NAME", "COMMAND", "TIMEOUT", "RETRIES"],
        rows,
    );
    Ok(())
}

/// A JSON value as `->>` shows it: a string without quotes, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
