//! Command rendering per machine OS: the exact text an executor sends over SSH.
//!
//! Pure string building, no I/O. Linux machines get POSIX `sh` scripts (the remote user's login
//! shell must be POSIX-compatible); Windows machines (OpenSSH for Windows) get PowerShell scripts,
//! which [`ssh_exec_line`] wraps into `powershell.exe -EncodedCommand …` so that neither cmd.exe
//! (OpenSSH's default shell) nor PowerShell re-parses them.
//!
//! Every value that comes from a user (paths, interpreter, requirements, env values, the test
//! command) is quoted: single quotes with `'\''` on sh, single quotes with doubled quote characters
//! in PowerShell. Env names are validated [`EnvName`]s and written bare. A NUL character cannot be
//! passed through either shell, so values holding one are refused with [`RenderError`].
//!
//! Paths: `~`, `~/x` and relative paths are relative to the remote user's home (`$HOME` on sh,
//! `$env:USERPROFILE` on Windows, never a quoted `~`); absolute paths are used as given.
//!
//! # Process-group marker (timeouts and cancel)
//!
//! A run script prints one marker line on stdout before the test command starts, which the
//! executor strips from the output with [`parse_marker`] and keeps to kill the run later:
//!
//! - Linux: `RUNLEDGER_PGID=<n>`. The script ends with `exec 3>&2 2>/dev/null` and
//!   `exec setsid -w sh -c 'echo "RUNLEDGER_PGID=$$"; …; exec sh -c "$1" 2>&3 3>&-' runledger-run '<command>'`
//!   (only the command writes to the run's stderr; what `setsid` says about a killed group is
//!   dropped). [`run_and_clean_up`] keeps the shell instead of `exec`, to remove the working
//!   directory after the command.
//!   `setsid` puts the inner `sh` in a new session, so its `$$` is also its process-group id; the
//!   test command replaces that shell (same pid), and everything it starts stays in the group
//!   unless it calls `setsid` itself. `-w` makes `setsid` wait and pass the exit code back (it
//!   forks when the SSH session's shell is already a group leader, as under sshd). The command is
//!   passed as `$1`, so it is quoted once, not twice. Needs util-linux's `setsid` (≥ 2.26).
//!   [`kill`] then signals the whole group: `kill -TERM -<pgid>`, later `kill -KILL -<pgid>`
//!   (no `--`: dash's builtin `kill`, Debian's `/bin/sh`, rejects it; dash, bash, busybox and
//!   zsh all take a negative id right after the signal).
//! - Windows: `RUNLEDGER_PID=<n>`, the pid of the PowerShell process that runs the command as its
//!   child; `taskkill /T /F /PID <n>` ends that process and its whole tree.

mod posix;
mod powershell;
pub use runledger_types::pytest;
#[cfg(test)]
mod selection_tests;
pub mod shard;

use base64::Engine as _;
use runledger_types::command::SelectedTest;
use runledger_types::ids::RunId;
use runledger_types::values::{EnvName, Line, Os, VenvName};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Prefix of the Linux marker line: `RUNLEDGER_PGID=<process group id>`.
pub const PGID_MARKER: &str = "RUNLEDGER_PGID=";
/// Prefix of the Windows marker line: `RUNLEDGER_PID=<pid of the process tree's root>`.
pub const PID_MARKER: &str = "RUNLEDGER_PID=";
/// The file in a run's working directory that holds its process-group id (Linux) or root pid
/// (Windows), so a restarted executor can end what a crashed one left running
/// ([`end_leftovers`]).
pub const PROCESS_FILE: &str = ".runledger-process";
/// Longest command line cmd.exe accepts; a longer Windows script must be uploaded and run as a file.
pub const WINDOWS_MAX_COMMAND_LINE: usize = 8191;

/// A value could not be rendered safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Shells cannot carry NUL characters.
    #[error("{what} contains a NUL character")]
    NulCharacter {
        /// Which value (`env FOO`, `command`, `venv path`, …).
        what: String,
    },
    /// The selected tests' names are too long for one environment variable.
    #[error(
        "the {count} selected tests' names take {bytes} bytes, more than the {MAX_SELECTION_BYTES} \
         one environment variable may carry"
    )]
    SelectionTooLong {
        /// How many tests were selected.
        count: usize,
        /// How many bytes `RUNLEDGER_TESTS` would hold.
        bytes: usize,
    },
}

/// Most bytes of `RUNLEDGER_TESTS`, the same limit the handler refuses larger selections by
/// (`selection_too_large`): a selection past it is in the log only from before that check.
pub use runledger_types::command::MAX_SELECTION_BYTES;

/// The variable that holds a run's selected tests, one `classname::name` per line.
pub const TESTS_VARIABLE: &str = "RUNLEDGER_TESTS";

/// What a venv-provisioning script needs.
#[derive(Debug, Clone, Copy)]
pub struct VenvSpec<'a> {
    /// Where the venv lives on the machine (see [`default_venv_path`]).
    pub path: &'a str,
    /// Interpreter that creates it (a program name or path, e.g. `python3`).
    pub python: &'a str,
    /// pip requirement strings, each passed as one argument.
    pub requirements: &'a [Line],
    /// Run `pip install --upgrade pip` first.
    pub upgrade_pip: bool,
}

/// What a run script needs.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec<'a> {
    /// The run; names its working directory.
    pub run_id: RunId,
    /// Path of the leased venv.
    pub venv_path: &'a str,
    /// The test case's command line, in the machine's shell language.
    pub command: &'a str,
    /// The test case's environment.
    pub test_case_env: &'a BTreeMap<EnvName, String>,
    /// The run's environment; overrides the test case's.
    pub run_env: &'a BTreeMap<EnvName, String>,
    /// The tests the run selects; empty: the whole suite. Exported as [`TESTS_VARIABLE`], and
    /// appended as node ids to a pytest command ([`pytest::is_pytest`]) unless `shard_plugin`.
    pub tests: &'a [SelectedTest],
    /// A run group's shard of a pytest command: pytest loads [`shard::PLUGIN_MODULE`] from the
    /// working directory, which keeps the shard's tests at collection (its plan is
    /// [`shard::PLAN_FILE`]), instead of being given node ids.
    pub shard_plugin: bool,
}

/// How a running test process is identified for [`kill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessHandle {
    /// A Linux process group.
    Pgid(u32),
    /// The root of a Windows process tree.
    Pid(u32),
}

/// Which stage of termination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillStage {
    /// Ask politely (Linux `SIGTERM`; Windows has no equivalent and uses `taskkill /F` too).
    Terminate,
    /// Force, after the grace period (`SIGKILL`, `taskkill /T /F`).
    Kill,
}

/// The default venv path for a venv without an explicit one: `~/.runledger/venvs/<name>`.
pub fn default_venv_path(name: &VenvName) -> String {
    format!("~/.runledger/venvs/{name}")
}

/// The script that creates a venv, installs its requirements and prints `python --version` last.
pub fn provision_venv(os: Os, spec: &VenvSpec<'_>) -> Result<String, RenderError> {
    no_nul("venv path", spec.path)?;
    no_nul("python", spec.python)?;
    Ok(match os {
        Os::Linux => posix::provision_venv(spec),
        Os::Windows => powershell::provision_venv(spec),
    })
}

/// The script that creates the run's working directory (`~/.runledger/runs/<run_id>`), before
/// its files are uploaded.
pub fn prepare_workdir(os: Os, run_id: RunId) -> String {
    match os {
        Os::Linux => posix::prepare_workdir(run_id),
        Os::Windows => powershell::prepare_workdir(run_id),
    }
}

/// The script that runs a test case: working directory, env, venv, marker line, command.
pub fn run(os: Os, spec: &RunSpec<'_>) -> Result<String, RenderError> {
    match os {
        Os::Linux => rendered(os, spec, posix::run),
        Os::Windows => rendered(os, spec, powershell::run),
    }
}

/// On Linux, the script of [`run`] that also removes the run's working directory once the
/// command ends (for runs with nothing to fetch afterwards: one exec instead of two); `None` on
/// Windows, where the executor removes it separately.
pub fn run_and_clean_up(os: Os, spec: &RunSpec<'_>) -> Result<Option<String>, RenderError> {
    match os {
        Os::Linux => rendered(os, spec, posix::run_and_clean_up).map(Some),
        Os::Windows => Ok(None),
    }
}

/// A run script by `render`, after the checks, with the selection applied ([`Selection`]).
fn rendered(
    os: Os,
    spec: &RunSpec<'_>,
    render: fn(&RunSpec<'_>, &BTreeMap<&EnvName, &str>) -> String,
) -> Result<String, RenderError> {
    no_nul("venv path", spec.venv_path)?;
    no_nul("command", spec.command)?;
    let mut env = merged_env(spec)?;
    let selection = Selection::of(os, spec)?;
    let command = match &selection {
        Some(selection) => {
            env.insert(&selection.name, &selection.value);
            selection.command.as_ref()
        }
        None => spec.command,
    };
    if !spec.shard_plugin {
        return Ok(render(&RunSpec { command, ..*spec }, &env));
    }
    let plugin = ShardPlugin::new(os, &env)?;
    env.insert(&plugin.plan_name, shard::PLAN_FILE);
    env.insert(&plugin.path_name, &plugin.python_path);
    let command = format!("{} -p {}", command.trim_end(), shard::PLUGIN_MODULE);
    Ok(render(
        &RunSpec {
            command: &command,
            ..*spec
        },
        &env,
    ))
}

/// The variables a shard's pytest needs to load its plugin: the plan file, and `PYTHONPATH`
/// with the working directory first (before what the test case or run set).
struct ShardPlugin {
    plan_name: EnvName,
    path_name: EnvName,
    python_path: String,
}

impl ShardPlugin {
    fn new(os: Os, env: &BTreeMap<&EnvName, &str>) -> Result<Self, RenderError> {
        let name = |raw: &str| {
            EnvName::parse(raw).map_err(|_| RenderError::NulCharacter {
                what: raw.to_owned(),
            })
        };
        let path_name = name("PYTHONPATH")?;
        let separator = match os {
            Os::Linux => ':',
            Os::Windows => ';',
        };
        let python_path = match env.get(&path_name) {
            Some(set) if !set.is_empty() => format!(".{separator}{set}"),
            _ => ".".to_owned(),
        };
        Ok(Self {
            plan_name: name(shard::PLAN_VARIABLE)?,
            path_name,
            python_path,
        })
    }
}

/// What a run that selects tests adds to its script: `RUNLEDGER_TESTS` and, for a pytest
/// command, the node ids after it (quoted for the machine's shell).
struct Selection<'a> {
    name: EnvName,
    value: String,
    command: Cow<'a, str>,
}

impl<'a> Selection<'a> {
    /// `None` when `spec` selects no tests.
    fn of(os: Os, spec: &RunSpec<'a>) -> Result<Option<Self>, RenderError> {
        if spec.tests.is_empty() {
            return Ok(None);
        }
        let lines: Vec<String> = spec.tests.iter().map(ToString::to_string).collect();
        let value = lines.join("\n");
        no_nul("a selected test", &value)?;
        if value.len() > MAX_SELECTION_BYTES {
            return Err(RenderError::SelectionTooLong {
                count: spec.tests.len(),
                bytes: value.len(),
            });
        }
        let command = match pytest::is_pytest(spec.command) && !spec.shard_plugin {
            false => Cow::Borrowed(spec.command),
            true => {
                let quote = match os {
                    Os::Linux => posix::quote,
                    Os::Windows => powershell::quote,
                };
                let ids = spec.tests.iter().map(|t| quote(&pytest::node_id(t)));
                let mut command = spec.command.trim_end().to_owned();
                for id in ids {
                    command.push(' ');
                    command.push_str(&id);
                }
                Cow::Owned(command)
            }
        };
        let name = EnvName::parse(TESTS_VARIABLE).map_err(|_| RenderError::NulCharacter {
            what: TESTS_VARIABLE.to_owned(),
        })?;
        Ok(Some(Self {
            name,
            value,
            command,
        }))
    }
}

/// The command that signals a run's process group (Linux) or ends its process tree (Windows).
pub fn kill(handle: ProcessHandle, stage: KillStage) -> String {
    match (handle, stage) {
        (ProcessHandle::Pgid(pgid), KillStage::Terminate) => format!("kill -TERM -{pgid}"),
        (ProcessHandle::Pgid(pgid), KillStage::Kill) => format!("kill -KILL -{pgid}"),
        (ProcessHandle::Pid(pid), _) => format!("taskkill /T /F /PID {pid}"),
    }
}

/// The script a restarted executor runs for a run it held when it died: ends the processes the
/// run left (only those still carrying the run's `RUNLEDGER_RUN_ID` on Linux, and only a process
/// started before the process file was written on Windows, so a reused id is never hit), then
/// removes the working directory.
pub fn end_leftovers(os: Os, run_id: RunId) -> String {
    match os {
        Os::Linux => posix::end_leftovers(run_id),
        Os::Windows => powershell::end_leftovers(run_id),
    }
}

/// The script that removes the run's working directory.
pub fn cleanup_workdir(os: Os, run_id: RunId) -> String {
    match os {
        Os::Linux => posix::cleanup_workdir(run_id),
        Os::Windows => powershell::cleanup_workdir(run_id),
    }
}

/// The line to pass to an SSH exec channel: the script itself on Linux; on Windows
/// `powershell.exe … -EncodedCommand <base64 of UTF-16LE>`, immune to cmd.exe's parsing. Compare
/// its length with [`WINDOWS_MAX_COMMAND_LINE`].
pub fn ssh_exec_line(os: Os, script: &str) -> String {
    match os {
        Os::Linux => script.to_owned(),
        Os::Windows => {
            let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(utf16);
            format!(
                "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {encoded}"
            )
        }
    }
}

/// Longest Linux script sent inline: the kernel refuses a single argument over 128 KiB
/// (`MAX_ARG_STRLEN`), and sshd passes the script to the shell as one.
pub const LINUX_MAX_INLINE_SCRIPT: usize = 100 * 1024;

/// How a run script reaches the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecPlan {
    /// In the exec line itself ([`ssh_exec_line`]).
    Inline(String),
    /// Too long for a command line: uploaded into the run's working directory first (SFTP
    /// path relative to the home directory), then run as a file by `line`.
    Upload {
        /// Where to upload it.
        path: String,
        /// The script file's bytes.
        contents: Vec<u8>,
        /// The exec line that runs it.
        line: String,
    },
}

/// Decides how `script`, a run script for run `run_id`, is sent: inline while it fits (cmd.exe's
/// [`WINDOWS_MAX_COMMAND_LINE`] for the encoded line on Windows, [`LINUX_MAX_INLINE_SCRIPT`] on
/// Linux), else as a file in the working directory (`.runledger-run.ps1`, UTF-8 with a BOM so
/// Windows PowerShell reads it as UTF-8; `.runledger-run.sh` on Linux). OpenSSH starts sessions
/// in the home directory, so the file is named relative to it.
pub fn exec_plan(os: Os, run_id: RunId, script: &str) -> ExecPlan {
    let line = ssh_exec_line(os, script);
    match os {
        Os::Linux if script.len() <= LINUX_MAX_INLINE_SCRIPT => ExecPlan::Inline(line),
        Os::Windows if line.len() <= WINDOWS_MAX_COMMAND_LINE => ExecPlan::Inline(line),
        Os::Linux => ExecPlan::Upload {
            path: format!(".runledger/runs/{run_id}/.runledger-run.sh"),
            contents: script.as_bytes().to_vec(),
            line: format!("sh .runledger/runs/{run_id}/.runledger-run.sh"),
        },
        Os::Windows => {
            let mut contents = "\u{feff}".as_bytes().to_vec();
            contents.extend_from_slice(script.as_bytes());
            ExecPlan::Upload {
                path: format!(".runledger/runs/{run_id}/.runledger-run.ps1"),
                contents,
                line: format!(
                    "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass \
                     -File .runledger\\runs\\{run_id}\\.runledger-run.ps1"
                ),
            }
        }
    }
}

/// Reads a marker line (`RUNLEDGER_PGID=…` or `RUNLEDGER_PID=…`, trailing `\r\n` allowed).
pub fn parse_marker(line: &str) -> Option<ProcessHandle> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(pgid) = line.strip_prefix(PGID_MARKER) {
        return pgid
            .parse()
            .ok()
            .filter(|n| *n > 1)
            .map(ProcessHandle::Pgid);
    }
    let pid = line.strip_prefix(PID_MARKER)?;
    pid.parse().ok().filter(|n| *n > 0).map(ProcessHandle::Pid)
}

/// The test case's env overridden by the run's, every value checked for NUL.
fn merged_env<'a>(spec: &RunSpec<'a>) -> Result<BTreeMap<&'a EnvName, &'a str>, RenderError> {
    let mut env = BTreeMap::new();
    for (name, value) in spec.test_case_env.iter().chain(spec.run_env) {
        no_nul(&format!("env {name}"), value)?;
        env.insert(name, value.as_str());
    }
    Ok(env)
}

fn no_nul(what: &str, value: &str) -> Result<(), RenderError> {
    if value.contains('\0') {
        return Err(RenderError::NulCharacter {
            what: what.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_scripts_are_uploaded_and_run_as_files() {
        let run_id = RunId(uuid::Uuid::from_u128(7));
        let short = "Write-Output hi";
        assert_eq!(
            exec_plan(Os::Windows, run_id, short),
            ExecPlan::Inline(ssh_exec_line(Os::Windows, short))
        );
        // The encoded line grows by 8/3: about 3,000 characters of script fill cmd.exe's 8,191.
        let long = format!("Write-Output '{}'", "x".repeat(3100));
        let ExecPlan::Upload {
            path,
            contents,
            line,
        } = exec_plan(Os::Windows, run_id, &long)
        else {
            panic!("a long Windows script is uploaded");
        };
        let dir = format!(".runledger/runs/{run_id}");
        assert_eq!(path, format!("{dir}/.runledger-run.ps1"));
        assert_eq!(&contents[..3], b"\xEF\xBB\xBF", "UTF-8 with a BOM");
        assert_eq!(&contents[3..], long.as_bytes());
        assert!(line.len() < WINDOWS_MAX_COMMAND_LINE);
        assert!(
            line.ends_with(&format!(
                "-File .runledger\\runs\\{run_id}\\.runledger-run.ps1"
            )),
            "{line}"
        );

        let fits = "x".repeat(LINUX_MAX_INLINE_SCRIPT);
        assert!(matches!(
            exec_plan(Os::Linux, run_id, &fits),
            ExecPlan::Inline(_)
        ));
        let huge = "x".repeat(LINUX_MAX_INLINE_SCRIPT + 1);
        let ExecPlan::Upload { path, line, .. } = exec_plan(Os::Linux, run_id, &huge) else {
            panic!("a huge Linux script is uploaded");
        };
        assert_eq!(path, format!("{dir}/.runledger-run.sh"));
        assert_eq!(line, format!("sh {dir}/.runledger-run.sh"));
    }

    #[test]
    fn kill_commands() {
        assert_eq!(
            kill(ProcessHandle::Pgid(42), KillStage::Terminate),
            "kill -TERM -42"
        );
        assert_eq!(
            kill(ProcessHandle::Pgid(42), KillStage::Kill),
            "kill -KILL -42"
        );
        assert_eq!(
            kill(ProcessHandle::Pid(7), KillStage::Kill),
            "taskkill /T /F /PID 7"
        );
        assert_eq!(
            kill(ProcessHandle::Pid(7), KillStage::Terminate),
            "taskkill /T /F /PID 7"
        );
    }

    #[test]
    fn markers() {
        assert_eq!(
            parse_marker("RUNLEDGER_PGID=4242\n"),
            Some(ProcessHandle::Pgid(4242))
        );
        assert_eq!(
            parse_marker("RUNLEDGER_PID=17\r\n"),
            Some(ProcessHandle::Pid(17))
        );
        // pgid 0 or 1 would signal the caller's group or every process: never accepted.
        for bad in [
            "RUNLEDGER_PGID=0",
            "RUNLEDGER_PGID=1",
            "RUNLEDGER_PGID=-5",
            "x",
            "RUNLEDGER_PID=",
        ] {
            assert_eq!(parse_marker(bad), None, "{bad}");
        }
    }

    #[test]
    fn env_merge_run_overrides_and_nul_is_refused() {
        let name = |n: &str| EnvName::parse(n).unwrap();
        let case = BTreeMap::from([(name("A"), "case".to_owned()), (name("B"), "b".to_owned())]);
        let run_env = BTreeMap::from([(name("A"), "run".to_owned())]);
        let spec = RunSpec {
            run_id: RunId::new(),
            venv_path: "~/v",
            command: "true",
            test_case_env: &case,
            run_env: &run_env,
            tests: &[],
            shard_plugin: false,
        };
        let merged = merged_env(&spec).unwrap();
        assert_eq!(merged.get(&name("A")), Some(&"run"));
        assert_eq!(merged.get(&name("B")), Some(&"b"));
        let bad = BTreeMap::from([(name("X"), "a\0b".to_owned())]);
        let spec = RunSpec {
            run_env: &bad,
            ..spec
        };
        assert_eq!(
            run(Os::Linux, &spec),
            Err(RenderError::NulCharacter {
                what: "env X".into()
            })
        );
    }

    #[test]
    fn windows_exec_line_is_utf16le_base64() {
        let line = ssh_exec_line(Os::Windows, "é");
        assert!(line.ends_with("-EncodedCommand 6QA="), "{line}");
        assert_eq!(ssh_exec_line(Os::Linux, "echo hi"), "echo hi");
    }
}
