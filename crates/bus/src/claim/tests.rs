use super::*;

fn log(head: i64) -> LogFacts {
    LogFacts {
        id: LogId::new(),
        head,
    }
}

fn stream(claim: Option<StreamClaim>, last_sequence: u64) -> StreamState {
    StreamState {
        name: "T_EVENTS".into(),
        claim,
        last_sequence,
        messages: last_sequence,
    }
}

fn events(state: Option<&StreamState>, log: &LogFacts, compared: Option<bool>) -> Decision {
    decide(StreamKind::Events, "T_EVENTS", state, log, compared)
}

#[test]
fn a_missing_stream_is_created_with_the_claim() {
    let log = log(0);
    assert_eq!(
        events(None, &log, None),
        Decision::Create(StreamClaim::new(log.id))
    );
}

#[test]
fn a_stream_of_another_log_is_refused_naming_both_and_the_ways_out() {
    let (ours, theirs) = (log(3), LogId::new());
    let state = stream(Some(StreamClaim::new(theirs)), 500);
    let Decision::Refuse(refusal) = events(Some(&state), &ours, None) else {
        panic!("not refused");
    };
    let message = refusal.to_string();
    for needed in [
        "T_EVENTS",
        &ours.id.to_string(),
        &theirs.to_string(),
        "RUNLEDGER_NATS_PREFIX",
        "runledger bus reset",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from {message}"
        );
    }
    let commands = decide(
        StreamKind::Commands,
        "T_COMMANDS",
        Some(&state),
        &ours,
        None,
    );
    assert!(matches!(
        commands,
        Decision::Refuse(Refusal::OtherLog { .. })
    ));
}

#[test]
fn the_logs_own_stream_is_kept_unless_it_is_ahead() {
    let ours = log(10);
    let claim = StreamClaim::new(ours.id);
    assert_eq!(
        events(Some(&stream(Some(claim), 10)), &ours, None),
        Decision::Keep(claim)
    );
    assert!(matches!(
        events(Some(&stream(Some(claim), 11)), &ours, None),
        Decision::Refuse(Refusal::AheadOfLog { .. })
    ));
}

#[test]
fn an_unclaimed_stream_is_adopted_only_when_it_agrees_with_the_log() {
    let ours = log(10);
    assert_eq!(
        events(Some(&stream(None, 0)), &ours, None),
        Decision::Adopt(StreamClaim::new(ours.id))
    );
    let behind = stream(None, 7);
    assert_eq!(behind.sequence_to_compare(&ours), Some(7));
    assert_eq!(
        events(Some(&behind), &ours, Some(true)),
        Decision::Adopt(StreamClaim {
            log: ours.id,
            headers_from: 8
        })
    );
    assert!(matches!(
        events(Some(&behind), &ours, Some(false)),
        Decision::Refuse(Refusal::Diverged { sequence: 7, .. })
    ));
    let ahead = stream(None, 500);
    assert_eq!(ahead.sequence_to_compare(&ours), None);
    assert!(matches!(
        events(Some(&ahead), &ours, None),
        Decision::Refuse(Refusal::Unclaimed {
            last_sequence: 500,
            head: 10,
            ..
        })
    ));
    // Commands carry no positions: an unclaimed commands stream is simply claimed.
    assert_eq!(
        decide(
            StreamKind::Commands,
            "T_COMMANDS",
            Some(&ahead),
            &ours,
            None
        ),
        Decision::Adopt(StreamClaim::new(ours.id))
    );
}
