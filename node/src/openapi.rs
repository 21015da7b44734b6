//! The OpenAPI 3.1 document of the REST API, generated from a list of operations (the
//! catalogue the router is built from) and the JSON Schemas of the handlers' request and
//! response types: a pure function of that list. `routes::router` serves it at
//! `GET /api/v1/openapi.json`; a schemathesis run in the test command checks the running node
//! against it.

use ledger::limits::IDEMPOTENCY_KEY_CHARS_MAX;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::api::ErrorBody;
use crate::routes::catalogue::{Answer, Caller, Operation};

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
const SCHEMAS_PATH: &str = "#/components/schemas/";
/// Operations on one task live under this path.
const ONE_TASK_PREFIX: &str = "/api/v1/tasks/{id}";

/// The document of `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let mut generator =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = SCHEMAS_PATH.into()).into_generator();
    let error = generator.subschema_for::<ErrorBody>().to_value();
    // Named by the intake body's description, which takes items of any shape (see `IntakeRequest`).
    generator.subschema_for::<crate::intake::SignalJson>();
    // What a created task's id leads to: every operation on one task (OpenAPI links, which
    // let a stateful fuzzer act on the tasks it created).
    let on_one_task: Map<String, Value> = operations
        .iter()
        .filter(|operation| operation.path.starts_with(ONE_TASK_PREFIX))
        .map(|operation| {
            let id = operation_id(operation);
            (id.clone(), json!({"operationId": id, "parameters": {"id": "$response.body#/id"}}))
        })
        .collect();
    let mut paths = Map::new();
    for operation in operations {
        let mut described = describe(operation, &mut generator, &error);
        if let Answer::Json(status, _) = &operation.answer {
            if status.as_u16() == 201 {
                described["responses"]["201"]["links"] = Value::Object(on_one_task.clone());
            }
        }
        let item = paths.entry(operation.path).or_insert_with(|| json!({}));
        item[operation.method.as_str().to_ascii_lowercase()] = described;
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Xietong command and dispatch API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Errors answer {\"error\":{\"code\",\"message\"}} with a 4xx or 5xx status. \
                            Writes accept an Idempotency-Key header.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

fn describe(operation: &Operation, generator: &mut schemars::SchemaGenerator, error: &Value) -> Value {
    let mut parameters: Vec<Value> = path_parameters(operation.path);
    if let Some(query) = operation.query {
        let schema = query(generator).to_value();
        parameters.extend(query_parameters(&resolve(&schema, generator)));
    }
    if operation.idempotent {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Retries of a write with the same key are answered once, with the first answer.",
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_CHARS_MAX, "pattern": "^[!-~]+$"},
        }));
    }
    if operation.path.ends_with("{action}") {
        parameters.push(json!({
            "name": "If-Match", "in": "header", "required": false,
            "description": "The task version (its ETag) the action is decided on, instead of the body's version: 412 when the task moved on.",
            "schema": {"type": "string", "pattern": "^(\"[0-9]{1,19}\"|\\*)$"},
        }));
    }
    let mut responses = Map::new();
    match &operation.answer {
        Answer::Json(status, schema) => {
            let mut success = json!({"description": "success", "content": {"application/json": {"schema": schema(generator).to_value()}}});
            if *status == axum::http::StatusCode::CREATED {
                success["headers"] = json!({"Location": {"description": "Where what was created is read", "schema": {"type": "string"}}});
            }
            responses.insert(status.as_u16().to_string(), success);
        }
        Answer::JsonOrCsv(schema) => {
            responses.insert(
                "200".into(),
                json!({"description": "success", "content": {
                    "application/json": {"schema": schema(generator).to_value()},
                    "text/csv": {"schema": {"type": "string"}},
                }}),
            );
        }
        Answer::Text(content_type) => {
            let text = json!({"description": "", "content": {*content_type: {"schema": {"type": "string"}}}});
            responses.insert("200".into(), text.clone());
            // Readiness answers 503 in text when no leader is known.
            responses.insert("503".into(), text);
        }
        Answer::Empty => {
            responses.insert("204".into(), json!({"description": "done; no content"}));
        }
        Answer::Binary(content_type) => {
            responses.insert(
                "200".into(),
                json!({"description": "success", "content": {*content_type: {"schema": {"type": "string", "contentMediaType": content_type}}}}),
            );
        }
    }
    responses.insert(
        "default".into(),
        json!({"description": "an error", "content": {"application/json": {"schema": error}}}),
    );
    let mut described = json!({
        "summary": operation.summary,
        "operationId": operation_id(operation),
        "parameters": parameters,
        "responses": responses,
    });
    if operation.caller != Caller::Anyone {
        described["security"] = json!([{"bearer": []}]);
        described["description"] = json!(format!("Caller: {:?}.", operation.caller));
    }
    if let Some(body) = operation.body {
        // An action with no fields may be sent with an empty body.
        let required = !operation.path.ends_with("{action}") && !operation.path.ends_with("/draw");
        described["requestBody"] =
            json!({"required": required, "content": {operation.body_type: {"schema": body(generator).to_value()}}});
    }
    described
}

fn operation_id(operation: &Operation) -> String {
    let words: Vec<&str> =
        operation.path.split('/').filter(|part| !part.is_empty() && !matches!(*part, "api" | "v1")).collect();
    format!("{}_{}", operation.method.as_str().to_ascii_lowercase(), words.join("_").replace(['{', '}', '.'], ""))
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = match name {
                "id" => json!({"type": "integer", "minimum": 1, "format": "int64"}),
                "action" => json!({"type": "string", "enum": ledger::TaskAction::WIRE_NAMES}),
                "sha256" => json!({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
                "inspector" => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"}),
                "item" => json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,32}$"}),
                "year" => json!({"type": "integer", "minimum": 2000, "maximum": 2100}),
                "batch" => json!({"type": "integer", "minimum": 1, "format": "int32"}),
                "province" => json!({"type": "string", "pattern": "^[0-9]{2}0000$"}),
                "person" => json!({"type": "integer", "minimum": 1, "format": "int64"}),
                "number" => json!({"type": "integer", "minimum": 1, "format": "int32"}),
                "station" => json!({"type": "string", "pattern": "^[0-9]{9}$"}),
                "department" => json!({"type": "string", "pattern": "^[a-z0-9-]{2,16}$"}),
                "uscc" => {
                    json!({"type": "string", "minLength": 18, "maxLength": 18, "pattern": crate::api::schema::USCC_PATTERN})
                }
                other => unreachable!("path parameter {other} has no schema here"),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// A `$ref` to a component, followed (query structs are described field by field).
fn resolve(schema: &Value, generator: &schemars::SchemaGenerator) -> Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(SCHEMAS_PATH)) {
        Some(name) => generator.definitions().get(name).cloned().unwrap_or(Value::Null),
        None => schema.clone(),
    }
}

/// One query parameter per field of a query struct. A query string has no null, so an optional
/// field's `null` alternative is dropped: absent is how it is left out.
fn query_parameters(object: &Value) -> Vec<Value> {
    let required: Vec<&str> =
        object.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let Some(properties) = object.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .map(|(name, schema)| {
            let mut schema = schema.clone();
            if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    schema["type"] = types[0].clone();
                }
            }
            json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_described_once_with_its_schemas() {
        let operations = crate::routes::catalogue::operations();
        let document = document(&operations);
        let mut described = 0;
        for (path, item) in document["paths"].as_object().expect("paths") {
            described += item.as_object().expect("methods").len();
            assert!(path.starts_with('/'), "{path}");
        }
        assert_eq!(described, operations.len(), "one description per catalogue operation");
        let create = &document["paths"]["/api/v1/tasks"]["post"];
        assert_eq!(
            create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/TaskJson"
        );
        let schemas = document["components"]["schemas"].as_object().expect("schemas");
        for name in ["TaskJson", "CreateTaskRequest", "ErrorBody", "SubjectJson", "TaskPage"] {
            assert!(schemas.contains_key(name), "{name} is among the components");
        }
        let list = &document["paths"]["/api/v1/tasks"]["get"]["parameters"];
        assert!(list.as_array().expect("parameters").iter().any(|p| p["name"] == "limit" && p["in"] == "query"));
    }
}
