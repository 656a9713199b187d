//! Request bodies typed by their commands. A creating route takes the command's payload with its
//! id field optional (the gateway generates a missing id); a route whose path names the thing
//! takes the payload with the path's id winning over the body's. [`IdOptional`] gives such a
//! body its OpenAPI schema (the command's, with the id no longer required), and
//! [`typed_body`] decodes it into the command.
//!
//! Decoding errors are the handler's own (`invalid_payload`, 422, naming the JSON path), so a
//! caller sees the same answer whether the gateway or the handler refused the payload.

use crate::error::ApiError;
use crate::routes::parse_uuid;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use runledger_types::command::{
    AddVenv, CommandPayload, DefineTestCase, QuarantineTest, RegisterMachine, StartGroup, StartRun,
    UpdateMachine, decode_value,
};
use runledger_types::{OutgoingSecret, Rejection, RejectionCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::marker::PhantomData;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// A body as axum extracts it: a JSON object, or why not.
pub type RawBody = Result<Json<Map<String, Value>>, JsonRejection>;

/// A command whose route body may leave its id out.
pub trait IdField: CommandPayload + DeserializeOwned + ToSchema {
    /// The payload's id field.
    const ID_FIELD: &'static str;
    /// The request schema's name in the API document.
    const REQUEST: &'static str;
    /// What the route does with a body without the id.
    const NOTE: &'static str;
}

macro_rules! id_fields {
    ($($command:ty => $field:literal, $request:literal, $note:literal;)*) => {
        $(
            impl IdField for $command {
                const ID_FIELD: &'static str = $field;
                const REQUEST: &'static str = $request;
                const NOTE: &'static str = $note;
            }
        )*
    };
}

id_fields! {
    StartRun => "run_id", "StartRunRequest", "start_run's payload; run_id is generated when absent.";
    StartGroup => "group_id", "StartGroupRequest",
        "start_group's payload: exactly one of shards and matrix; group_id is generated when absent.";
    RegisterMachine<OutgoingSecret> => "machine_id", "RegisterMachineRequest",
        "register_machine's payload; machine_id is generated when absent. \
         password and private_key are sealed by the handler.";
    AddVenv => "venv_id", "AddVenvRequest", "add_venv's payload; venv_id is generated when absent.";
    DefineTestCase<OutgoingSecret> => "test_case_id", "DefineTestCaseRequest",
        "define_test_case's payload; test_case_id is generated when absent.";
    UpdateMachine<OutgoingSecret> => "machine_id", "UpdateMachineRequest",
        "update_machine's payload: any field of register_machine; the path names the machine.";
    QuarantineTest => "test_id", "QuarantineTestRequest",
        "quarantine_test's payload; the path names the test. until, when given, must be in the \
         future.";
}

/// The OpenAPI schema of a body of `C` whose id field is optional.
pub struct IdOptional<C>(PhantomData<C>);

/// `POST /api/v1/runs`
pub type StartRunRequest = IdOptional<StartRun>;
/// `POST /api/v1/groups`
pub type StartGroupRequest = IdOptional<StartGroup>;
/// `POST /api/v1/machines`
pub type RegisterMachineRequest = IdOptional<RegisterMachine<OutgoingSecret>>;
/// `PATCH /api/v1/machines/{machine_id}`
pub type UpdateMachineRequest = IdOptional<UpdateMachine<OutgoingSecret>>;
/// `POST /api/v1/venvs`
pub type AddVenvRequest = IdOptional<AddVenv>;
/// `POST /api/v1/test-cases`
pub type DefineTestCaseRequest = IdOptional<DefineTestCase<OutgoingSecret>>;
/// `POST /api/v1/tests/{test_id}/quarantine`
pub type QuarantineTestRequest = IdOptional<QuarantineTest>;

impl<C: IdField> PartialSchema for IdOptional<C> {
    fn schema() -> RefOr<Schema> {
        let mut schema = C::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required.retain(|field| field != C::ID_FIELD);
            object.description = Some(C::NOTE.to_owned());
        }
        schema
    }
}

impl<C: IdField> ToSchema for IdOptional<C> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(C::REQUEST)
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        C::schemas(schemas);
    }
}

/// The body as a JSON object; 400 (or 413, 415) as axum's JSON extractor says.
pub fn object(body: RawBody) -> Result<Map<String, Value>, ApiError> {
    body.map(|Json(map)| map)
        .map_err(|err| ApiError::bad_body(&err))
}

/// The id a creating body names in `field`, or a fresh one; 400 when it is not a uuid string.
pub fn new_id(payload: &Map<String, Value>, field: &str) -> Result<Uuid, ApiError> {
    match payload.get(field) {
        None => Ok(Uuid::now_v7()),
        Some(Value::String(raw)) => parse_uuid(raw, field),
        Some(_) => Err(ApiError::bad_request(format!(
            "{field}: must be a uuid string"
        ))),
    }
}

/// `payload` with its id field set to `id`, decoded as `C`; 422 `invalid_payload` as the
/// handler answers a payload it cannot decode.
pub fn typed_body<C: IdField>(mut payload: Map<String, Value>, id: Uuid) -> Result<C, ApiError> {
    payload.insert(C::ID_FIELD.to_owned(), Value::String(id.to_string()));
    typed(payload)
}

/// `payload` decoded as `T`; 422 `invalid_payload` as the handler answers a payload it cannot
/// decode. A number with a zero fraction (`30.0`) counts as the integer it is, as JSON Schema
/// counts it.
pub fn typed<T: DeserializeOwned>(payload: Map<String, Value>) -> Result<T, ApiError> {
    let mut payload = Value::Object(payload);
    integral_numbers_as_integers(&mut payload);
    decode_value(payload)
        .map_err(|err| ApiError::rejected(Rejection::new(RejectionCode::InvalidPayload, err.0)))
}

/// Rewrites every number with a zero fraction that fits an `i64` or `u64` as that integer.
fn integral_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64().filter(|float| float.fract() == 0.0) {
                // In range, the float is exactly the integer; out of range it stays a float.
                let integer = if (-9.2e18..9.2e18).contains(&float) {
                    Some(Value::from(float as i64))
                } else if (0.0..1.8e19).contains(&float) {
                    Some(Value::from(float as u64))
                } else {
                    None
                };
                if let Some(integer) = integer {
                    *value = integer;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_a_zero_fraction_are_integers() {
        let mut value = serde_json::json!({"a": 30.0, "b": [1.5, -2.0], "c": {"d": 1e300}});
        integral_numbers_as_integers(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": 30, "b": [1.5, -2], "c": {"d": 1e300}})
        );
    }

    #[test]
    fn a_request_schema_is_its_commands_without_the_id() {
        let schema = serde_json::to_value(IdOptional::<StartRun>::schema()).unwrap_or_default();
        assert_eq!(schema["required"], serde_json::json!(["test_case_id"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(IdOptional::<StartRun>::name(), "StartRunRequest");
    }
}
