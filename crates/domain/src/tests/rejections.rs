//! Rejections are recorded in streams of their own, which the lab does not keep.

use crate::evolve;
use crate::state::Lab;
use runledger_types::event::CommandRejected;
use runledger_types::{CommandId, Event, Rejection, RejectionCode};

#[test]
fn a_flood_of_rejections_does_not_grow_the_lab() {
    let mut lab = Lab::new();
    for _ in 0..1000 {
        let event = Event::CommandRejected(CommandRejected {
            command_id: CommandId::new(),
            command_type: "start_run".into(),
            error: Rejection::new(RejectionCode::InvalidPayload, "bad"),
        });
        assert_eq!(lab.stream_version(&event.stream_id()), 0);
        evolve(&mut lab, &event);
        assert_eq!(
            lab.stream_version(&event.stream_id()),
            0,
            "next version is still 1"
        );
    }
    assert!(lab.versions.is_empty());
}
