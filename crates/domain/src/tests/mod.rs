//! Given/when/then tests of every rule, one file per command family.

mod accounts;
mod authorization;
mod groups;
mod jenkins;
mod leases;
mod machines;
mod property;
mod quarantine;
mod quarantine_runs;
mod rejections;
mod reports;
mod rerun;
mod runs;
mod scheduling;
mod users;
mod venvs;
