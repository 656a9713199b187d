//! `define_test_case` (admins and trusted systems only; checked in [`crate::authz`]).

use super::reject;
use crate::state::Lab;
use runledger_types::command::DefineTestCase;
use runledger_types::event::TestCaseDefined;
use runledger_types::{Event, Rejection, RejectionCode};

/// A new test case, unless its id is taken; every field is copied.
pub(super) fn define_test_case(
    lab: &Lab,
    command: &DefineTestCase,
) -> Result<Vec<Event>, Rejection> {
    if lab.test_case(&command.test_case_id).is_some() {
        return reject(
            RejectionCode::TestCaseExists,
            format!("test case {} is already defined", command.test_case_id),
        );
    }
    Ok(vec![Event::TestCaseDefined(TestCaseDefined {
        test_case_id: command.test_case_id,
        name: command.name.clone(),
        description: command.description.clone(),
        command: command.command.clone(),
        jenkins: command.jenkins.clone(),
        files: command.files.clone(),
        env: command.env.clone(),
        env_overridable: command.env_overridable.clone(),
        timeout_s: command.timeout_s,
        junit_xml: command.junit_xml.clone(),
        retries: command.retries,
        max_output_bytes: command.max_output_bytes,
    })])
}
