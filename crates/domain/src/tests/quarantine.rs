//! `quarantine_test`, `release_test`, `lapse_quarantine`: who may send them, what they check,
//! and the lab's quarantines after them.

use crate::testing::*;
use chrono::{DateTime, Utc};
use runledger_types::command::{
    CommandType, LapseQuarantine, QuarantineTest, ReleaseTest, parse_payload,
};
use runledger_types::event::{TestQuarantined, TestReleased, UserDisabled};
use runledger_types::{Command, Event, Reason, RejectionCode, TestId, Username};
use uuid::Uuid;

/// Test id number `n`.
pub fn t(n: u128) -> TestId {
    TestId(Uuid::from_u128(0x5000 + n))
}

fn reason(text: &str) -> Reason {
    Reason::parse(text).expect("reason")
}

/// `quarantine_test` of `test_id` with `until`.
pub fn quarantine(test_id: TestId, until: Option<DateTime<Utc>>) -> Command {
    Command::QuarantineTest(QuarantineTest {
        test_id,
        reason: reason("flaky: races the cache"),
        until,
        test_case_id: None,
    })
}

/// The `test_quarantined` that `quarantine(test_id, until)` by `by` decides.
pub fn quarantined(test_id: TestId, until: Option<DateTime<Utc>>, by: &str) -> Event {
    Event::TestQuarantined(TestQuarantined {
        test_id,
        test_case_id: None,
        reason: reason("flaky: races the cache"),
        until,
        by: actor_of(by),
    })
}

fn release(test_id: TestId) -> Command {
    Command::ReleaseTest(ReleaseTest { test_id })
}

fn lapse(test_id: TestId) -> Command {
    Command::LapseQuarantine(LapseQuarantine { test_id })
}

fn released(test_id: TestId, lapsed: bool) -> Event {
    Event::TestReleased(TestReleased { test_id, lapsed })
}

#[test]
fn any_user_quarantines_a_test_and_the_lab_knows_who_and_why() {
    for who in [MEMBER, ADMIN, SYSTEM] {
        let lab = given(&base())
            .when(who, quarantine(t(1), Some(at(3600))))
            .then_expect(&[quarantined(t(1), Some(at(3600)), who)]);
        let held = lab.quarantine(&t(1)).expect("quarantined");
        assert_eq!((held.by.as_str(), held.until), (who, Some(at(3600))));
        assert!(held.holds_at(at(3599)) && !held.holds_at(at(3600)));
    }
    let stream = quarantined(t(1), None, MEMBER).stream_id();
    assert_eq!(stream, format!("test-{}", t(1)));
}

#[test]
fn executors_and_disabled_users_may_not_quarantine() {
    let refused = given(&base())
        .when(EXEC, quarantine(t(1), None))
        .then_reject(RejectionCode::Forbidden);
    assert!(
        refused.message.contains("quarantine_test"),
        "{}",
        refused.message
    );
    let history = all([
        base(),
        vec![quarantined(t(1), None, MEMBER)],
        vec![Event::UserDisabled(UserDisabled {
            username: Username::parse(OTHER).expect("name"),
        })],
    ]);
    given(&history)
        .when(OTHER, quarantine(t(2), None))
        .then_reject(RejectionCode::UserDisabled);
    given(&history)
        .when(OTHER, release(t(1)))
        .then_reject(RejectionCode::UserDisabled);
    given(&history)
        .when(EXEC, release(t(1)))
        .then_reject(RejectionCode::Forbidden);
}

#[test]
fn an_end_must_be_in_the_future_of_the_decision() {
    for until in [at(-1), now()] {
        let refused = given(&base())
            .when(MEMBER, quarantine(t(1), Some(until)))
            .then_reject(RejectionCode::InvalidPayload);
        assert!(
            refused.message.starts_with("payload.until:"),
            "{}",
            refused.message
        );
    }
    given(&base())
        .when_at(at(-10), MEMBER, quarantine(t(1), Some(at(-5))))
        .events();
}

#[test]
fn a_reason_is_one_to_a_thousand_characters() {
    let id = t(1);
    for (text, ok) in [("", false), ("  ", false), ("x", true)] {
        let json = format!(r#"{{"test_id":"{id}","reason":"{text}"}}"#);
        assert_eq!(
            parse_payload(CommandType::QuarantineTest, &json).is_ok(),
            ok
        );
    }
    let long = format!(r#"{{"test_id":"{id}","reason":"{}"}}"#, "é".repeat(1001));
    let refused = parse_payload(CommandType::QuarantineTest, &long).map(|_| ());
    assert!(refused.is_err_and(|err| err.0.starts_with("payload.reason:")));
    let just = format!(r#"{{"test_id":"{id}","reason":"{}"}}"#, "é".repeat(1000));
    assert!(parse_payload(CommandType::QuarantineTest, &just).is_ok());
}

#[test]
fn a_named_test_case_must_be_defined_and_is_kept_on_a_change() {
    let named = |test_case_id| {
        Command::QuarantineTest(QuarantineTest {
            test_id: t(1),
            reason: reason("broken by the new resolver"),
            until: None,
            test_case_id: Some(test_case_id),
        })
    };
    given(&base())
        .when(MEMBER, named(tc(9)))
        .then_reject(RejectionCode::UnknownTestCase);
    let (events, lab) = given(&base()).when(MEMBER, named(tc(1))).events();
    let mut history = base();
    history.extend(events);
    // Quarantining again changes reason, end and author, and keeps the test case.
    let (events, _) = given(&history)
        .when(ADMIN, quarantine(t(1), Some(at(60))))
        .events();
    assert!(
        matches!(&events[..], [Event::TestQuarantined(e)]
            if e.test_case_id == Some(tc(1)) && e.until == Some(at(60)) && e.by.as_str() == ADMIN),
        "{events:?}"
    );
    assert_eq!(
        lab.quarantine(&t(1)).and_then(|q| q.test_case_id),
        Some(tc(1))
    );
}

#[test]
fn a_release_ends_a_quarantine_and_needs_one() {
    given(&base())
        .when(MEMBER, release(t(1)))
        .then_reject(RejectionCode::NotQuarantined);
    let history = all([base(), vec![quarantined(t(1), Some(at(60)), ADMIN)]]);
    let lab = given(&history)
        .when(OTHER, release(t(1)))
        .then_expect(&[released(t(1), false)]);
    assert!(lab.quarantine(&t(1)).is_none());
    assert_eq!(lab.quarantines().count(), 0);
}

#[test]
fn a_quarantine_lapses_only_once_its_end_has_passed() {
    let history = all([
        base(),
        vec![quarantined(t(1), Some(at(60)), MEMBER)],
        vec![quarantined(t(2), None, MEMBER)],
    ]);
    let early = given(&history)
        .when_at(at(59), SYSTEM, lapse(t(1)))
        .then_reject(RejectionCode::QuarantineNotLapsed);
    assert!(early.message.contains("until"), "{}", early.message);
    let lab = given(&history)
        .when_at(at(60), SYSTEM, lapse(t(1)))
        .then_expect(&[released(t(1), true)]);
    assert!(lab.quarantine(&t(1)).is_none());
    given(&history)
        .when_at(at(1_000_000), SYSTEM, lapse(t(2)))
        .then_reject(RejectionCode::QuarantineNotLapsed);
    given(&history)
        .when_at(at(61), SYSTEM, lapse(t(3)))
        .then_reject(RejectionCode::NotQuarantined);
    let after = all([history, vec![released(t(1), true)]]);
    given(&after)
        .when_at(at(61), SYSTEM, lapse(t(1)))
        .then_reject(RejectionCode::NotQuarantined);
}

#[test]
fn only_admins_and_systems_lapse_quarantines() {
    let history = all([base(), vec![quarantined(t(1), Some(at(60)), MEMBER)]]);
    for who in [MEMBER, EXEC] {
        given(&history)
            .when_at(at(61), who, lapse(t(1)))
            .then_reject(RejectionCode::Forbidden);
    }
    given(&history).when_at(at(61), ADMIN, lapse(t(1))).events();
}

#[test]
fn the_watch_sees_every_quarantine_with_an_end() {
    let history = all([
        base(),
        vec![quarantined(t(1), Some(at(60)), MEMBER)],
        vec![quarantined(t(2), None, MEMBER)],
    ]);
    let ends = crate::quarantine::ends(&given(&history).lab);
    assert_eq!(ends.into_iter().collect::<Vec<_>>(), vec![(t(1), at(60))]);
}
