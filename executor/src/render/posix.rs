//! POSIX `sh` scripts for Linux machines.

use super::{RunSpec, VenvSpec};
use runledger_types::ids::RunId;
use runledger_types::values::EnvName;
use std::collections::BTreeMap;

/// `value` as one sh word: single quotes, each `'` written `'\''`.
pub(super) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A path as one sh word, with `~`, `~/…` and relative paths under `"$HOME"`.
pub(super) fn path(raw: &str) -> String {
    if raw == "~" {
        return "\"$HOME\"".to_owned();
    }
    if raw.starts_with('/') {
        return quote(raw);
    }
    let rest = raw.strip_prefix("~/").unwrap_or(raw);
    format!("\"$HOME\"{}", quote(&format!("/{rest}")))
}

/// An interpreter: `~/…` expanded, anything else quoted (a bare name is still looked up in PATH).
fn program(raw: &str) -> String {
    if raw == "~" || raw.starts_with("~/") {
        path(raw)
    } else {
        quote(raw)
    }
}

fn workdir(run_id: RunId) -> String {
    path(&format!("~/.runledger/runs/{run_id}"))
}

pub(super) fn provision_venv(spec: &VenvSpec<'_>) -> String {
    let mut lines = vec![
        "set -e".to_owned(),
        format!("venv={}", path(spec.path)),
        format!("{} -m venv \"$venv\"", program(spec.python)),
    ];
    if spec.upgrade_pip {
        lines.push("\"$venv/bin/python\" -m pip install --upgrade pip".to_owned());
    }
    if !spec.requirements.is_empty() {
        let reqs: Vec<String> = spec
            .requirements
            .iter()
            .map(|r| quote(r.as_str()))
            .collect();
        lines.push(format!(
            "\"$venv/bin/python\" -m pip install {}",
            reqs.join(" ")
        ));
    }
    lines.push("\"$venv/bin/python\" --version".to_owned());
    lines.join("\n")
}

pub(super) fn prepare_workdir(run_id: RunId) -> String {
    format!("mkdir -p {}", workdir(run_id))
}

pub(super) fn run(spec: &RunSpec<'_>, env: &BTreeMap<&EnvName, &str>) -> String {
    let mut lines = setup(spec, env);
    let [redirect, setsid] = launch(spec, env);
    lines.push(redirect);
    lines.push(format!("exec {setsid}"));
    lines.join("\n")
}

/// [`run`], but the shell stays to remove the working directory once the command has ended,
/// and exits with the command's status.
pub(super) fn run_and_clean_up(spec: &RunSpec<'_>, env: &BTreeMap<&EnvName, &str>) -> String {
    let mut lines = setup(spec, env);
    lines.extend(launch(spec, env));
    lines.push("rc=$?".to_owned());
    lines.push(format!("cd / && rm -rf -- {}", workdir(spec.run_id)));
    lines.push("exit $rc".to_owned());
    lines.join("\n")
}

/// Working directory, venv and env of a run script.
fn setup(spec: &RunSpec<'_>, env: &BTreeMap<&EnvName, &str>) -> Vec<String> {
    let dir = workdir(spec.run_id);
    let mut lines = vec![
        format!("mkdir -p {dir} && cd {dir} || exit 125"),
        "export PYTHONUNBUFFERED=1".to_owned(),
        format!("export VIRTUAL_ENV={}", path(spec.venv_path)),
        "export PATH=\"$VIRTUAL_ENV/bin:$PATH\"".to_owned(),
        "unset PYTHONHOME".to_owned(),
    ];
    lines.extend(
        env.iter()
            .map(|(name, value)| format!("export {name}={}", quote(value))),
    );
    lines.push(format!("export RUNLEDGER_RUN_ID={}", spec.run_id));
    lines
}

/// The variables of the machine's login environment a run's command keeps (when set): what a
/// shell, a locale and Python need. Everything else sshd or the account's profile set stays
/// out; the command's environment is these, runledger's own and the test case's and run's env.
const PASSED_FROM_MACHINE: &[&str] = &[
    "HOME", "PATH", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ",
    "TMPDIR",
];

/// `env -i` with exactly the command's environment: [`PASSED_FROM_MACHINE`] where set, then
/// what [`setup`] exported.
fn explicit_env(env: &BTreeMap<&EnvName, &str>) -> String {
    let passed = PASSED_FROM_MACHINE
        .iter()
        .map(|name| format!("${{{name}+\"{name}=${name}\"}}"));
    let own = ["PYTHONUNBUFFERED", "VIRTUAL_ENV"]
        .into_iter()
        .chain(env.keys().map(|name| name.as_str()))
        .chain(["RUNLEDGER_RUN_ID"])
        .map(|name| format!("{name}=\"${name}\""));
    let words: Vec<String> = passed.chain(own).collect();
    format!("env -i {}", words.join(" "))
}

/// The command in its own process group, after the marker line and the process file, with an
/// explicit environment ([`explicit_env`]). Only the command writes to the run's stderr (kept
/// as fd 3): what `setsid` and the waiting shell say about a killed process group
/// ("Terminated", "child did not exit normally") is dropped.
fn launch(spec: &RunSpec<'_>, env: &BTreeMap<&EnvName, &str>) -> [String; 2] {
    [
        "exec 3>&2 2>/dev/null".to_owned(),
        format!(
            "{} setsid -w sh -c 'echo \"{}$$\"; echo $$ > {}; exec sh -c \"$1\" 2>&3 3>&-' runledger-run {}",
            explicit_env(env),
            super::PGID_MARKER,
            super::PROCESS_FILE,
            quote(spec.command)
        ),
    ]
}

pub(super) fn end_leftovers(run_id: RunId) -> String {
    let dir = workdir(run_id);
    let file = super::PROCESS_FILE;
    [
        format!("dir={dir}"),
        format!("if [ -f \"$dir/{file}\" ]; then"),
        format!("  pgid=$(cat \"$dir/{file}\")"),
        "  for p in /proc/[0-9]*; do".to_owned(),
        "    read -r stat < \"$p/stat\" 2>/dev/null || continue".to_owned(),
        "    set -- ${stat##*) }".to_owned(),
        "    [ \"$3\" = \"$pgid\" ] || continue".to_owned(),
        format!(
            "    tr '\\0' '\\n' < \"$p/environ\" 2>/dev/null | grep -qx 'RUNLEDGER_RUN_ID={run_id}' && kill -KILL \"${{p#/proc/}}\" 2>/dev/null"
        ),
        "  done".to_owned(),
        "fi".to_owned(),
        "rm -rf -- \"$dir\"".to_owned(),
    ]
    .join("\n")
}

pub(super) fn cleanup_workdir(run_id: RunId) -> String {
    format!("rm -rf -- {}", workdir(run_id))
}

#[cfg(test)]
mod tests {
    use super::super::{RunSpec, VenvSpec, prepare_workdir, provision_venv, run};
    use super::*;
    use runledger_types::values::{Line, Os};
    use uuid::Uuid;

    const HOSTILE: [&str; 7] = [
        "'; rm -rf /",
        "$(x)",
        "`id`",
        "a\nb",
        "héllo wörld ✓",
        "\\'\"",
        "$HOME ${X} !!",
    ];

    /// Like [`HOSTILE`] but harmless if quoting ever broke: these are really run by `sh`.
    const HOSTILE_BUT_SAFE: [&str; 7] = [
        "'; exit 3; '",
        "$(exit 3)",
        "`exit 3`",
        "a\nb",
        "héllo wörld ✓",
        "\\'\"",
        "$HOME ${X} !!",
    ];

    fn run_id() -> RunId {
        RunId(Uuid::from_u128(0x0193_a000_0000_7000_8000_0000_0000_0001))
    }

    /// `sh -n`: parse only, nothing is executed.
    fn assert_sh_syntax(script: &str) {
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", script])
            .status()
            .unwrap();
        assert!(status.success(), "sh -n rejected:\n{script}");
    }

    /// Runs `printf %s <word>` in sh (only with [`HOSTILE_BUT_SAFE`] values and paths): quoting
    /// must give back exactly the original value.
    fn sh_roundtrip(word: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {word}")])
            .env("HOME", "/home/u")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn quoting_survives_hostile_values() {
        for value in HOSTILE_BUT_SAFE {
            assert_eq!(sh_roundtrip(&quote(value)), value);
        }
        assert_eq!(quote("'; rm -rf /"), r"''\''; rm -rf /'");
    }

    #[test]
    fn paths_expand_home_and_keep_the_rest_quoted() {
        assert_eq!(
            path("~/.runledger/venvs/v1"),
            "\"$HOME\"'/.runledger/venvs/v1'"
        );
        assert_eq!(path("/opt/v 1"), "'/opt/v 1'");
        assert_eq!(path("venvs/$(x)"), "\"$HOME\"'/venvs/$(x)'");
        assert_eq!(sh_roundtrip(&path("~/a b")), "/home/u/a b");
        assert_eq!(sh_roundtrip(&path("~")), "/home/u");
    }

    #[test]
    fn venv_provisioning_exact() {
        let reqs = [
            Line::parse("pytest==8.3").unwrap(),
            Line::parse("x'; rm -rf /").unwrap(),
        ];
        let spec = VenvSpec {
            path: "~/.runledger/venvs/py312",
            python: "python3",
            requirements: &reqs,
            upgrade_pip: true,
        };
        let script = provision_venv(Os::Linux, &spec).unwrap();
        assert_eq!(
            script,
            "set -e\n\
             venv=\"$HOME\"'/.runledger/venvs/py312'\n\
             'python3' -m venv \"$venv\"\n\
             \"$venv/bin/python\" -m pip install --upgrade pip\n\
             \"$venv/bin/python\" -m pip install 'pytest==8.3' 'x'\\''; rm -rf /'\n\
             \"$venv/bin/python\" --version"
        );
        assert_sh_syntax(&script);
        let bare = VenvSpec {
            requirements: &[],
            upgrade_pip: false,
            ..spec
        };
        assert!(
            !provision_venv(Os::Linux, &bare)
                .unwrap()
                .contains("pip install")
        );
    }

    #[test]
    fn run_exact() {
        let name = |n: &str| EnvName::parse(n).unwrap();
        let case = BTreeMap::from([(name("MODE"), "fast".to_owned())]);
        let run_env = BTreeMap::from([(name("TOKEN"), "a'b".to_owned())]);
        let spec = RunSpec {
            run_id: run_id(),
            venv_path: "~/.runledger/venvs/py312",
            command: "pytest -q --junitxml=report.xml",
            test_case_env: &case,
            run_env: &run_env,
            tests: &[],
            shard_plugin: false,
        };
        let script = run(Os::Linux, &spec).unwrap();
        let dir = "\"$HOME\"'/.runledger/runs/0193a000-0000-7000-8000-000000000001'";
        assert_eq!(
            script,
            format!(
                "mkdir -p {dir} && cd {dir} || exit 125\n\
                 export PYTHONUNBUFFERED=1\n\
                 export VIRTUAL_ENV=\"$HOME\"'/.runledger/venvs/py312'\n\
                 export PATH=\"$VIRTUAL_ENV/bin:$PATH\"\n\
                 unset PYTHONHOME\n\
                 export MODE='fast'\n\
                 export TOKEN='a'\\''b'\n\
                 export RUNLEDGER_RUN_ID=0193a000-0000-7000-8000-000000000001\n\
                 exec 3>&2 2>/dev/null\n\
                 exec env -i ${{HOME+\"HOME=$HOME\"}} ${{PATH+\"PATH=$PATH\"}} ${{USER+\"USER=$USER\"}} ${{LOGNAME+\"LOGNAME=$LOGNAME\"}} ${{SHELL+\"SHELL=$SHELL\"}} ${{LANG+\"LANG=$LANG\"}} ${{LANGUAGE+\"LANGUAGE=$LANGUAGE\"}} ${{LC_ALL+\"LC_ALL=$LC_ALL\"}} ${{LC_CTYPE+\"LC_CTYPE=$LC_CTYPE\"}} ${{TZ+\"TZ=$TZ\"}} ${{TMPDIR+\"TMPDIR=$TMPDIR\"}} PYTHONUNBUFFERED=\"$PYTHONUNBUFFERED\" VIRTUAL_ENV=\"$VIRTUAL_ENV\" MODE=\"$MODE\" TOKEN=\"$TOKEN\" RUNLEDGER_RUN_ID=\"$RUNLEDGER_RUN_ID\" setsid -w sh -c 'echo \"RUNLEDGER_PGID=$$\"; echo $$ > .runledger-process; exec sh -c \"$1\" 2>&3 3>&-' runledger-run 'pytest -q --junitxml=report.xml'"
            )
        );
        assert_sh_syntax(&script);
        assert_eq!(
            prepare_workdir(Os::Linux, run_id()),
            format!("mkdir -p {dir}")
        );
        assert_eq!(
            super::super::cleanup_workdir(Os::Linux, run_id()),
            format!("rm -rf -- {dir}")
        );
        assert_sh_syntax(&super::super::end_leftovers(Os::Linux, run_id()));
        let cleaning = super::super::run_and_clean_up(Os::Linux, &spec)
            .unwrap()
            .unwrap();
        assert_sh_syntax(&cleaning);
        assert!(
            cleaning.ends_with(&format!("rc=$?\ncd / && rm -rf -- {dir}\nexit $rc")),
            "{cleaning}"
        );
        assert!(cleaning.contains("\nenv -i ${HOME+"), "{cleaning}");
    }

    #[test]
    fn hostile_env_and_command_stay_quoted() {
        for value in HOSTILE {
            let env = BTreeMap::from([(EnvName::parse("V").unwrap(), value.to_owned())]);
            let spec = RunSpec {
                run_id: run_id(),
                venv_path: value,
                command: value,
                test_case_env: &env,
                run_env: &BTreeMap::new(),
                tests: &[],
                shard_plugin: false,
            };
            let script = run(Os::Linux, &spec).unwrap();
            assert!(
                script.contains(&format!("export V={}", quote(value))),
                "{script}"
            );
            assert!(
                script.ends_with(&format!("runledger-run {}", quote(value))),
                "{script}"
            );
            assert_sh_syntax(&script);
        }
    }
}
