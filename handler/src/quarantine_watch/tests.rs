use super::*;
use runledger_types::Rejection;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default()
}

fn test(n: u128) -> TestId {
    TestId(Uuid::from_u128(n))
}

fn ends_at(until: DateTime<Utc>) -> Ends {
    BTreeMap::from([(test(1), until)])
}

fn lapse(until: DateTime<Utc>, attempt: u32) -> Lapse {
    Lapse {
        test_id: test(1),
        until,
        attempt,
    }
}

#[test]
fn a_lapse_is_due_a_moment_after_the_end_and_once() {
    let mut watch = QuarantineWatch::default();
    let ends = ends_at(t0());
    assert!(watch.due(&ends, t0()).is_empty(), "within the grace");
    let due = watch.due(&ends, t0() + GRACE);
    assert_eq!(due, vec![lapse(t0(), 0)]);
    watch.answered(&due[0], Answer::Settled, t0() + GRACE);
    assert!(watch.due(&ends, t0() + RETRY_AFTER * 10).is_empty());
}

#[test]
fn a_lapse_refused_as_too_early_is_sent_again_as_the_next_attempt() {
    let mut watch = QuarantineWatch::default();
    let ends = ends_at(t0());
    let now = t0() + GRACE;
    let first = watch.due(&ends, now);
    watch.answered(&first[0], Answer::TooEarly, now);
    assert!(watch.due(&ends, now + RETRY_AFTER / 2).is_empty());
    let again = watch.due(&ends, now + RETRY_AFTER);
    assert_eq!(again, vec![lapse(t0(), 1)]);
    assert_ne!(again[0].command_id(), first[0].command_id());
}

#[test]
fn an_unanswered_lapse_is_sent_again_under_the_same_id() {
    let mut watch = QuarantineWatch::default();
    let ends = ends_at(t0());
    let now = t0() + GRACE;
    let first = watch.due(&ends, now);
    watch.answered(&first[0], Answer::Unanswered, now);
    assert!(watch.due(&ends, now + GRACE).is_empty());
    assert_eq!(watch.due(&ends, now + RETRY_AFTER), first);
}

#[test]
fn a_new_end_starts_afresh_and_a_released_test_is_forgotten() {
    let mut watch = QuarantineWatch::default();
    let now = t0() + GRACE;
    let first = watch.due(&ends_at(t0()), now);
    watch.answered(&first[0], Answer::Settled, now);
    let later = t0() + RETRY_AFTER;
    assert!(watch.due(&ends_at(later), now).is_empty(), "not yet");
    assert_eq!(
        watch.due(&ends_at(later), later + GRACE),
        vec![lapse(later, 0)]
    );
    assert!(watch.due(&Ends::new(), later + GRACE).is_empty());
    assert!(watch.tracked.is_empty());
}

#[test]
fn answers_count_by_their_rejection_code() {
    let id = CommandId(Uuid::from_u128(9));
    let refused = |code| Ok(Outcome::rejected(id, Rejection::new(code, "no")));
    assert_eq!(
        Answer::of(&refused(RejectionCode::QuarantineNotLapsed)),
        Answer::TooEarly
    );
    assert_eq!(
        Answer::of(&refused(RejectionCode::NotQuarantined)),
        Answer::Settled
    );
    assert_eq!(
        Answer::of(&refused(RejectionCode::StorageError)),
        Answer::Unanswered
    );
    assert_eq!(
        Answer::of(&Ok(Outcome::accepted(id, Vec::new()))),
        Answer::Settled
    );
}

#[test]
fn the_command_id_names_test_end_and_attempt() {
    let a = lapse(t0(), 0);
    assert_eq!(a.command_id(), lapse(t0(), 0).command_id());
    assert_ne!(a.command_id(), lapse(t0() + GRACE, 0).command_id());
    assert_ne!(
        a.command_id(),
        Lapse {
            test_id: test(2),
            ..a
        }
        .command_id()
    );
}
