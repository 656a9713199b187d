//! Payloads that start and cancel run groups: one suite split into shards across the pool, or
//! one run per combination of a matrix, with one answer (docs/groups.md).

use super::InvalidPayload;
use crate::ids::{GroupId, MachineId, TestCaseId};
use crate::values::{EnvName, Label, PythonVersion};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// Most members one group may have: shards, or combinations of a matrix.
pub const MAX_GROUP_MEMBERS: u32 = 64;

/// `start_group`: run a test case as `shards` runs that split its tests by past durations, or
/// as one run per combination of `matrix`. Give exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartGroup {
    /// The new group's id.
    pub group_id: GroupId,
    /// What to run.
    pub test_case_id: TestCaseId,
    /// Split the suite into this many runs (1–64), by the tests' past durations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 64)]
    pub shards: Option<u32>,
    /// Run once per combination of these dimensions (at most 64 combinations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Matrix>,
    /// Only venvs on this machine (every member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<MachineId>,
    /// Only machines carrying all of these labels (every member; a matrix's labels add to them).
    #[serde(default)]
    pub labels: BTreeSet<Label>,
    /// Environment overrides for every member (a matrix's env is laid over them).
    #[serde(default)]
    pub env: BTreeMap<EnvName, String>,
}

/// The dimensions of a matrix group: each given one multiplies the combinations by its length.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Sets of machine labels: each combination runs on machines carrying one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<BTreeSet<Label>>,
    /// Python versions (`3.11`): each combination runs in a venv whose interpreter reported that
    /// version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python: Vec<PythonVersion>,
    /// Environments: each combination sets one of them (names its test case lets runs set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<BTreeMap<EnvName, String>>,
}

/// One combination of a matrix: what one member run adds to the group's selectors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Combination {
    /// Labels its machine must carry.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub labels: BTreeSet<Label>,
    /// The Python version its venv must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonVersion>,
    /// Its environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<EnvName, String>,
}

impl Matrix {
    /// Every combination, the first dimension varying slowest (labels, then python, then env).
    pub fn combinations(&self) -> Vec<Combination> {
        let mut out = vec![Combination::default()];
        if !self.labels.is_empty() {
            out = out
                .into_iter()
                .flat_map(|c| {
                    self.labels.iter().map(move |labels| Combination {
                        labels: labels.clone(),
                        ..c.clone()
                    })
                })
                .collect();
        }
        if !self.python.is_empty() {
            out = out
                .into_iter()
                .flat_map(|c| {
                    self.python.iter().map(move |python| Combination {
                        python: Some(python.clone()),
                        ..c.clone()
                    })
                })
                .collect();
        }
        if !self.env.is_empty() {
            out = out
                .into_iter()
                .flat_map(|c| {
                    self.env.iter().map(move |env| Combination {
                        env: env.clone(),
                        ..c.clone()
                    })
                })
                .collect();
        }
        out
    }

    /// True when no dimension is given.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.python.is_empty() && self.env.is_empty()
    }

    /// How many combinations the matrix has, without building them (1 when it is empty).
    pub fn size(&self) -> usize {
        [self.labels.len(), self.python.len(), self.env.len()]
            .into_iter()
            .filter(|n| *n > 0)
            .product()
    }
}

impl StartGroup {
    /// Exactly one of `shards` (1–64) and `matrix` (one to 64 combinations).
    pub(super) fn checked(self) -> Result<Self, InvalidPayload> {
        match (&self.shards, &self.matrix) {
            (Some(_), Some(_)) => Err(InvalidPayload(
                "payload: give `shards` or `matrix`, not both".into(),
            )),
            (None, None) => Err(InvalidPayload(
                "payload: give `shards` (how many runs split the suite) or `matrix`".into(),
            )),
            (Some(shards), None) if !(1..=MAX_GROUP_MEMBERS).contains(shards) => {
                Err(InvalidPayload(format!(
                    "payload.shards: must be 1-{MAX_GROUP_MEMBERS}, not {shards}"
                )))
            }
            (None, Some(matrix)) if matrix.is_empty() => Err(InvalidPayload(
                "payload.matrix: give at least one of `labels`, `python`, `env`".into(),
            )),
            (None, Some(matrix)) if matrix.size() > MAX_GROUP_MEMBERS as usize => {
                Err(InvalidPayload(format!(
                    "payload.matrix: {} combinations, more than the {MAX_GROUP_MEMBERS} one group \
                     may run",
                    matrix.size()
                )))
            }
            _ => Ok(self),
        }
    }
}

/// `cancel_group`: cancels every member of a group that has not ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelGroup {
    /// The group to cancel.
    pub group_id: GroupId,
    /// Why, for the audit history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> BTreeSet<Label> {
        names.iter().map(|n| Label::parse(*n).unwrap()).collect()
    }

    #[test]
    fn combinations_multiply_the_given_dimensions_first_slowest() {
        let matrix = Matrix {
            labels: vec![labels(&["linux"]), labels(&["windows"])],
            python: vec![],
            env: vec![
                BTreeMap::from([(EnvName::parse("DB").unwrap(), "pg".into())]),
                BTreeMap::from([(EnvName::parse("DB").unwrap(), "sqlite".into())]),
            ],
        };
        let all = matrix.combinations();
        assert_eq!(matrix.size(), 4);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].labels, labels(&["linux"]));
        assert_eq!(all[0].env[&EnvName::parse("DB").unwrap()], "pg");
        assert_eq!(all[1].labels, labels(&["linux"]));
        assert_eq!(all[1].env[&EnvName::parse("DB").unwrap()], "sqlite");
        assert_eq!(all[3].labels, labels(&["windows"]));
    }

    #[test]
    fn an_empty_matrix_has_no_combination_to_run() {
        assert_eq!(Matrix::default().size(), 1);
        let start = StartGroup {
            group_id: GroupId::new(),
            test_case_id: TestCaseId::new(),
            shards: None,
            matrix: Some(Matrix::default()),
            machine_id: None,
            labels: BTreeSet::new(),
            env: BTreeMap::new(),
        };
        assert!(start.checked().is_err());
    }
}
