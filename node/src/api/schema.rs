//! JSON Schemas for API fields whose Rust type is a plain `String` but whose accepted values are
//! narrower: wire enums, region codes, USCCs, timestamps. Used through
//! `#[schemars(schema_with = "...")]` so the OpenAPI document says what the handlers check.

use ledger::{ComplaintChannel, CompletionOutcome, Severity, Source, TaskKind, TaskState};
use schemars::{json_schema, Schema, SchemaGenerator};

/// A GB/T 2260 region code: six digits (the handlers also check it is a known region).
const REGION_CODE_PATTERN: &str = "^[0-9]{6}$";
/// A unit: a region's six digits, or a station's nine (its county's and a number).
const UNIT_CODE_PATTERN: &str = "^[0-9]{6}([0-9]{3})?$";
/// A unified social credit code: 18 characters of the GB 32100 alphabet (the handlers also
/// check its check digit).
pub const USCC_PATTERN: &str = "^[0-9A-HJ-NPQRTUWXY]{18}$";

fn one_of(names: &[&str]) -> Schema {
    json_schema!({"type": "string", "enum": names})
}

fn optional_one_of(names: &[&str]) -> Schema {
    let mut with_null: Vec<serde_json::Value> = names.iter().map(|n| serde_json::json!(n)).collect();
    with_null.push(serde_json::Value::Null);
    json_schema!({"type": ["string", "null"], "enum": with_null})
}

pub fn task_kind(_: &mut SchemaGenerator) -> Schema {
    one_of(TaskKind::WIRE_NAMES)
}

/// The kinds a desk registers: every kind but `inspection`, which only a draw makes.
pub fn creatable_task_kind(_: &mut SchemaGenerator) -> Schema {
    let kinds: Vec<&str> =
        TaskKind::WIRE_NAMES.iter().copied().filter(|kind| *kind != TaskKind::Inspection.as_str()).collect();
    one_of(&kinds)
}

pub fn optional_task_kind(_: &mut SchemaGenerator) -> Schema {
    optional_one_of(TaskKind::WIRE_NAMES)
}

pub fn severity(_: &mut SchemaGenerator) -> Schema {
    one_of(Severity::WIRE_NAMES)
}

pub fn optional_severity(_: &mut SchemaGenerator) -> Schema {
    optional_one_of(Severity::WIRE_NAMES)
}

pub fn source(_: &mut SchemaGenerator) -> Schema {
    one_of(Source::WIRE_NAMES)
}

pub fn task_state(_: &mut SchemaGenerator) -> Schema {
    one_of(TaskState::WIRE_NAMES)
}

pub fn optional_outcome(_: &mut SchemaGenerator) -> Schema {
    optional_one_of(CompletionOutcome::WIRE_NAMES)
}

pub fn complaint_channel(_: &mut SchemaGenerator) -> Schema {
    one_of(ComplaintChannel::WIRE_NAMES)
}

pub fn region_code(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": REGION_CODE_PATTERN})
}

pub fn optional_region_code(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "pattern": REGION_CODE_PATTERN})
}

pub fn unit_code(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": UNIT_CODE_PATTERN})
}

pub fn optional_unit_code(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "pattern": UNIT_CODE_PATTERN})
}

pub fn optional_uscc(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "pattern": USCC_PATTERN})
}

pub fn timestamp(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date-time"})
}

pub fn optional_timestamp(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "format": "date-time"})
}

pub fn optional_date(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"})
}

// Query-string choices; absent means the default (the first).

pub fn optional_list_order(_: &mut SchemaGenerator) -> Schema {
    optional_one_of(&["newest", "time_left"])
}

pub fn optional_consistency(_: &mut SchemaGenerator) -> Schema {
    optional_one_of(&["local", "linearizable"])
}

pub fn optional_breakdown(_: &mut SchemaGenerator) -> Schema {
    optional_one_of(&["child", "day", "week"])
}

pub fn optional_report_format(_: &mut SchemaGenerator) -> Schema {
    optional_one_of(&["json", "csv"])
}

pub fn uscc(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "minLength": 18, "maxLength": 18, "pattern": USCC_PATTERN})
}
