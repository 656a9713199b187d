//! PowerShell scripts for Windows machines (OpenSSH for Windows).
//!
//! Every script starts with a preamble that stops on cmdlet errors, silences progress records
//! (they would arrive as CLIXML over SSH) and writes UTF-8. Native commands' failures are checked
//! through `$LASTEXITCODE`. An env value set to `''` removes the variable: Windows has no empty
//! environment variables.

use super::{RunSpec, VenvSpec};
use runledger_types::ids::RunId;
use runledger_types::values::EnvName;
use std::collections::BTreeMap;

const PREAMBLE: &str = "$ErrorActionPreference = 'Stop'\n\
                        $ProgressPreference = 'SilentlyContinue'\n\
                        [Console]::OutputEncoding = [System.Text.Encoding]::UTF8";

const CHECK_EXIT: &str = "if ($LASTEXITCODE) { exit $LASTEXITCODE }";

/// `value` as a single-quoted PowerShell string. PowerShell ends such a string at `'` and at the
/// typographic quotes ‘ ’ ‚ ‛ too, so each of them is doubled.
pub(super) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A path as a PowerShell expression: `~`, `~\…`, `~/…` and relative paths under
/// `$env:USERPROFILE` (with `/` turned into `\`), absolute paths (`C:\…`, `\\server\…`) quoted.
pub(super) fn path(raw: &str) -> String {
    if raw == "~" {
        return "$env:USERPROFILE".to_owned();
    }
    let absolute = raw.starts_with(['\\', '/']) || raw.get(1..2) == Some(":");
    if absolute {
        return quote(raw);
    }
    let rest = raw
        .strip_prefix("~/")
        .or_else(|| raw.strip_prefix("~\\"))
        .unwrap_or(raw);
    format!(
        "($env:USERPROFILE + {})",
        quote(&format!("\\{}", rest.replace('/', "\\")))
    )
}

fn program(raw: &str) -> String {
    if raw == "~" || raw.starts_with("~/") || raw.starts_with("~\\") {
        path(raw)
    } else {
        quote(raw)
    }
}

fn workdir(run_id: RunId) -> String {
    path(&format!("~\\.runledger\\runs\\{run_id}"))
}

pub(super) fn provision_venv(spec: &VenvSpec<'_>) -> String {
    let python = "& \"$venv\\Scripts\\python.exe\"";
    let mut lines = vec![
        PREAMBLE.to_owned(),
        format!("$venv = {}", path(spec.path)),
        format!("& {} -m venv $venv", program(spec.python)),
        CHECK_EXIT.to_owned(),
    ];
    if spec.upgrade_pip {
        lines.push(format!("{python} -m pip install --upgrade pip"));
        lines.push(CHECK_EXIT.to_owned());
    }
    if !spec.requirements.is_empty() {
        let reqs: Vec<String> = spec
            .requirements
            .iter()
            .map(|r| quote(r.as_str()))
            .collect();
        lines.push(format!("{python} -m pip install {}", reqs.join(" ")));
        lines.push(CHECK_EXIT.to_owned());
    }
    lines.push(format!("{python} --version"));
    lines.push("exit $LASTEXITCODE".to_owned());
    lines.join("\n")
}

pub(super) fn prepare_workdir(run_id: RunId) -> String {
    format!(
        "{PREAMBLE}\n[System.IO.Directory]::CreateDirectory({}) | Out-Null",
        workdir(run_id)
    )
}

pub(super) fn run(spec: &RunSpec<'_>, env: &BTreeMap<&EnvName, &str>) -> String {
    let mut lines = vec![
        PREAMBLE.to_owned(),
        format!("$workdir = {}", workdir(spec.run_id)),
        "[System.IO.Directory]::CreateDirectory($workdir) | Out-Null".to_owned(),
        "Set-Location -LiteralPath $workdir".to_owned(),
        "$env:PYTHONUNBUFFERED = '1'".to_owned(),
        format!("$env:VIRTUAL_ENV = {}", path(spec.venv_path)),
        "$env:PATH = \"$env:VIRTUAL_ENV\\Scripts;$env:PATH\"".to_owned(),
        "Remove-Item Env:PYTHONHOME -ErrorAction SilentlyContinue".to_owned(),
    ];
    lines.extend(
        env.iter()
            .map(|(name, value)| format!("$env:{name} = {}", quote(value))),
    );
    lines.extend([
        format!("$env:RUNLEDGER_RUN_ID = '{}'", spec.run_id),
        format!("Write-Output \"{}$PID\"", super::PID_MARKER),
        format!(
            "Set-Content -LiteralPath (Join-Path $workdir '{}') -Value $PID",
            super::PROCESS_FILE
        ),
        "$ErrorActionPreference = 'Continue'".to_owned(),
        "$global:LASTEXITCODE = 0".to_owned(),
        format!("Invoke-Expression {}", quote(spec.command)),
        "$ok = $?".to_owned(),
        CHECK_EXIT.to_owned(),
        "if (-not $ok) { exit 1 }".to_owned(),
        "exit 0".to_owned(),
    ]);
    lines.join("\n")
}

pub(super) fn end_leftovers(run_id: RunId) -> String {
    [
        PREAMBLE.to_owned(),
        format!("$workdir = {}", workdir(run_id)),
        format!("$file = Join-Path $workdir '{}'", super::PROCESS_FILE),
        "if (Test-Path -LiteralPath $file) {".to_owned(),
        "  $id = [int](Get-Content -LiteralPath $file -TotalCount 1)".to_owned(),
        "  $p = Get-Process -Id $id -ErrorAction SilentlyContinue".to_owned(),
        "  if ($p -and $p.StartTime -le (Get-Item -LiteralPath $file).LastWriteTime) { taskkill /T /F /PID $id 2>$null | Out-Null }".to_owned(),
        "}".to_owned(),
        "Remove-Item -LiteralPath $workdir -Recurse -Force -ErrorAction SilentlyContinue".to_owned(),
    ]
    .join("\n")
}

pub(super) fn cleanup_workdir(run_id: RunId) -> String {
    format!(
        "Remove-Item -LiteralPath {} -Recurse -Force -ErrorAction SilentlyContinue",
        workdir(run_id)
    )
}

#[cfg(test)]
mod tests {
    use super::super::{RunSpec, VenvSpec, cleanup_workdir, prepare_workdir, provision_venv, run};
    use super::*;
    use runledger_types::values::{Line, Os};
    use uuid::Uuid;

    fn run_id() -> RunId {
        RunId(Uuid::from_u128(0x0193_a000_0000_7000_8000_0000_0000_0001))
    }

    /// Undoes [`quote`] the way PowerShell reads a single-quoted string; None if it ends early.
    fn unquote(word: &str) -> Option<String> {
        let inner = word.strip_prefix('\'')?.strip_suffix('\'')?;
        let is_quote =
            |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}');
        let mut out = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if is_quote(c) && chars.next_if(|n| is_quote(*n)).is_none() {
                return None;
            }
            out.push(c);
        }
        Some(out)
    }

    #[test]
    fn quoting_survives_hostile_values() {
        for value in [
            "'; Remove-Item -Recurse C:\\",
            "$(x)",
            "`n",
            "a\nb",
            "héllo ✓",
            "’; calc; ‘",
            "\"$env:X\"",
        ] {
            assert_eq!(unquote(&quote(value)).as_deref(), Some(value), "{value}");
        }
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quote("‘x’"), "'‘‘x’’'");
    }

    #[test]
    fn paths() {
        assert_eq!(
            path("~/.runledger/venvs/v1"),
            "($env:USERPROFILE + '\\.runledger\\venvs\\v1')"
        );
        assert_eq!(path("venvs\\v1"), "($env:USERPROFILE + '\\venvs\\v1')");
        assert_eq!(path("C:\\venvs\\it's"), "'C:\\venvs\\it''s'");
        assert_eq!(path("\\\\server\\share"), "'\\\\server\\share'");
        assert_eq!(path("~"), "$env:USERPROFILE");
    }

    #[test]
    fn venv_provisioning_exact() {
        let reqs = [
            Line::parse("pytest==8.3").unwrap(),
            Line::parse("x'; calc").unwrap(),
        ];
        let spec = VenvSpec {
            path: "~/.runledger/venvs/py312",
            python: "python",
            requirements: &reqs,
            upgrade_pip: true,
        };
        let expected = format!(
            "{PREAMBLE}\n\
             $venv = ($env:USERPROFILE + '\\.runledger\\venvs\\py312')\n\
             & 'python' -m venv $venv\n{CHECK_EXIT}\n\
             & \"$venv\\Scripts\\python.exe\" -m pip install --upgrade pip\n{CHECK_EXIT}\n\
             & \"$venv\\Scripts\\python.exe\" -m pip install 'pytest==8.3' 'x''; calc'\n{CHECK_EXIT}\n\
             & \"$venv\\Scripts\\python.exe\" --version\n\
             exit $LASTEXITCODE"
        );
        assert_eq!(provision_venv(Os::Windows, &spec).unwrap(), expected);
    }

    #[test]
    fn run_exact() {
        let name = |n: &str| EnvName::parse(n).unwrap();
        let case = BTreeMap::from([
            (name("MODE"), "fast".to_owned()),
            (name("TOKEN"), "x".to_owned()),
        ]);
        let run_env = BTreeMap::from([(name("TOKEN"), "a'b$(c)".to_owned())]);
        let spec = RunSpec {
            run_id: run_id(),
            venv_path: "~/.runledger/venvs/py312",
            command: "pytest -q --junitxml=report.xml",
            test_case_env: &case,
            run_env: &run_env,
            tests: &[],
            shard_plugin: false,
        };
        let dir = "($env:USERPROFILE + '\\.runledger\\runs\\0193a000-0000-7000-8000-000000000001')";
        let expected = format!(
            "{PREAMBLE}\n\
             $workdir = {dir}\n\
             [System.IO.Directory]::CreateDirectory($workdir) | Out-Null\n\
             Set-Location -LiteralPath $workdir\n\
             $env:PYTHONUNBUFFERED = '1'\n\
             $env:VIRTUAL_ENV = ($env:USERPROFILE + '\\.runledger\\venvs\\py312')\n\
             $env:PATH = \"$env:VIRTUAL_ENV\\Scripts;$env:PATH\"\n\
             Remove-Item Env:PYTHONHOME -ErrorAction SilentlyContinue\n\
             $env:MODE = 'fast'\n\
             $env:TOKEN = 'a''b$(c)'\n\
             $env:RUNLEDGER_RUN_ID = '0193a000-0000-7000-8000-000000000001'\n\
             Write-Output \"RUNLEDGER_PID=$PID\"\n\
             Set-Content -LiteralPath (Join-Path $workdir '.runledger-process') -Value $PID\n\
             $ErrorActionPreference = 'Continue'\n\
             $global:LASTEXITCODE = 0\n\
             Invoke-Expression 'pytest -q --junitxml=report.xml'\n\
             $ok = $?\n{CHECK_EXIT}\n\
             if (-not $ok) {{ exit 1 }}\n\
             exit 0"
        );
        assert_eq!(run(Os::Windows, &spec).unwrap(), expected);
        assert_eq!(
            prepare_workdir(Os::Windows, run_id()),
            format!("{PREAMBLE}\n[System.IO.Directory]::CreateDirectory({dir}) | Out-Null")
        );
        assert_eq!(
            cleanup_workdir(Os::Windows, run_id()),
            format!("Remove-Item -LiteralPath {dir} -Recurse -Force -ErrorAction SilentlyContinue")
        );
        let leftovers = super::super::end_leftovers(Os::Windows, run_id());
        assert!(
            leftovers.contains(&format!("$workdir = {dir}")),
            "{leftovers}"
        );
        assert!(leftovers.contains("taskkill /T /F /PID $id"), "{leftovers}");
    }

    #[test]
    fn hostile_env_and_command_stay_quoted() {
        for value in ["'; rm -rf /", "$(x)", "`whoami`", "a\r\nb", "ünï ’‘"] {
            let env = BTreeMap::from([(EnvName::parse("V").unwrap(), value.to_owned())]);
            let spec = RunSpec {
                run_id: run_id(),
                venv_path: "~/v",
                command: value,
                test_case_env: &env,
                run_env: &BTreeMap::new(),
                tests: &[],
                shard_plugin: false,
            };
            let script = run(Os::Windows, &spec).unwrap();
            assert!(
                script.contains(&format!("$env:V = {}\n", quote(value))),
                "{script}"
            );
            assert!(
                script.contains(&format!("Invoke-Expression {}\n", quote(value))),
                "{script}"
            );
        }
    }
}
