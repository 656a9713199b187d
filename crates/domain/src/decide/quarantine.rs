//! `quarantine_test`, `release_test` and `lapse_quarantine`. Who may send them is checked in
//! [`crate::authz`] (any user or trusted system; `lapse_quarantine` admins and systems only;
//! never executors). Each test's quarantine is a stream of its own, `test-<test_id>`.

use super::{reject, require_test_case};
use crate::state::{Lab, Quarantine};
use chrono::{DateTime, SecondsFormat, Utc};
use runledger_types::command::{LapseQuarantine, QuarantineTest, ReleaseTest};
use runledger_types::event::{TestQuarantined, TestReleased};
use runledger_types::{Actor, Event, Rejection, RejectionCode, TestId};

/// `test_quarantined`. A test already quarantined gets its reason, end and author replaced
/// (a lab extends or explains a quarantine more often than it wants to be told it exists).
/// `until` must be after `now`; a named test case must be defined.
pub(super) fn quarantine_test(
    lab: &Lab,
    actor: &Actor,
    command: &QuarantineTest,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, Rejection> {
    if let Some(until) = command.until.filter(|until| *until <= now) {
        return reject(
            RejectionCode::InvalidPayload,
            format!(
                "payload.until: {} is not in the future (decided at {})",
                rfc3339(until),
                rfc3339(now)
            ),
        );
    }
    if let Some(test_case_id) = command.test_case_id {
        require_test_case(lab, test_case_id)?;
    }
    let earlier = lab.quarantine(&command.test_id);
    Ok(vec![Event::TestQuarantined(TestQuarantined {
        test_id: command.test_id,
        test_case_id: command
            .test_case_id
            .or(earlier.and_then(|quarantine| quarantine.test_case_id)),
        reason: command.reason.clone(),
        until: command.until,
        by: actor.clone(),
    })])
}

/// `test_released` (`lapsed: false`) for a quarantined test, whether or not its end has passed.
pub(super) fn release_test(lab: &Lab, command: &ReleaseTest) -> Result<Vec<Event>, Rejection> {
    quarantined(lab, command.test_id)?;
    Ok(vec![released(command.test_id, false)])
}

/// `test_released` (`lapsed: true`) for a quarantined test whose end has passed at `now`;
/// `quarantine_not_lapsed` for one without an end or whose end is still ahead.
pub(super) fn lapse_quarantine(
    lab: &Lab,
    command: &LapseQuarantine,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, Rejection> {
    let test_id = command.test_id;
    let quarantine = quarantined(lab, test_id)?;
    match quarantine.until {
        Some(until) if until <= now => Ok(vec![released(test_id, true)]),
        Some(until) => reject(
            RejectionCode::QuarantineNotLapsed,
            format!(
                "test {test_id} is quarantined until {}, after {}",
                rfc3339(until),
                rfc3339(now)
            ),
        ),
        None => reject(
            RejectionCode::QuarantineNotLapsed,
            format!("test {test_id} is quarantined until released: it has no end to lapse at"),
        ),
    }
}

/// The quarantine of `test_id`, or `not_quarantined`.
fn quarantined(lab: &Lab, test_id: TestId) -> Result<&Quarantine, Rejection> {
    match lab.quarantine(&test_id) {
        Some(quarantine) => Ok(quarantine),
        None => reject(
            RejectionCode::NotQuarantined,
            format!("test {test_id} is not quarantined"),
        ),
    }
}

fn released(test_id: TestId, lapsed: bool) -> Event {
    Event::TestReleased(TestReleased { test_id, lapsed })
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
