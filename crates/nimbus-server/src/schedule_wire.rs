//! Wire shapes of the scheduling routes (scheduling.md): job and cron bodies with their
//! validation (field paths in `detail.field`), and the `ScheduledJob`, `JobStatus`,
//! `ScheduledJobResult`, `CronJob` and `CronRun` resources. Fields are snake_case.

use nimbus_core::NimbusError;
use nimbus_core::ids::{DocumentId, TableName};
use nimbus_core::limits::{MAX_CRON_NAME_CHARS, MAX_RUN_AFTER_MS};
use nimbus_engine::document::{Fields, validate_user_fields};
use nimbus_engine::tenant::{Cron, CronRun, Job, Target};
use nimbus_scheduler::{CronChange, Schedule};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `POST /api/tenants/{t}/schedule`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateJob {
    /// Delay before the job is due, ms.
    pub run_after_ms: u64,
    /// The target (validated by [`parse_target`]).
    pub mutation: Value,
}

impl CreateJob {
    /// The validated delay and target.
    pub fn validate(&self) -> Result<(u64, Target), NimbusError> {
        if self.run_after_ms > MAX_RUN_AFTER_MS {
            return Err(NimbusError::invalid_input(
                "run_after_ms",
                format!("must be an integer from 0 to {MAX_RUN_AFTER_MS}"),
            ));
        }
        Ok((self.run_after_ms, parse_target(&self.mutation)?))
    }
}

/// `POST /api/tenants/{t}/crons`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateCron {
    /// The cron's name.
    pub name: String,
    /// The schedule (validated by [`parse_schedule`]).
    pub schedule: Value,
    /// The target.
    pub mutation: Value,
}

/// `PATCH /api/tenants/{t}/crons/{name}`: any subset.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PatchCron {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// A new schedule.
    pub schedule: Option<Value>,
    /// A new target.
    pub mutation: Option<Value>,
}

impl PatchCron {
    /// The validated change.
    pub fn validate(&self) -> Result<CronChange, NimbusError> {
        Ok(CronChange {
            enabled: self.enabled,
            schedule: self.schedule.as_ref().map(parse_schedule).transpose()?,
            target: self.mutation.as_ref().map(parse_target).transpose()?,
        })
    }
}

/// Checks a cron name: 1–128 chars, no `/`, no control characters, no surrounding whitespace.
pub fn check_cron_name(name: &str, field: &str) -> Result<(), NimbusError> {
    let reason = if name.is_empty() {
        "must not be empty".to_owned()
    } else if name.chars().count() > MAX_CRON_NAME_CHARS {
        format!("must be at most {MAX_CRON_NAME_CHARS} characters")
    } else if name.contains('/') {
        "must not contain '/'".to_owned()
    } else if name.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else if name.trim() != name {
        "must not have leading or trailing whitespace".to_owned()
    } else {
        return Ok(());
    };
    Err(NimbusError::invalid_input(field, reason))
}

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, NimbusError> {
    value.as_object().ok_or_else(|| NimbusError::invalid_input(field, "must be an object"))
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a str, NimbusError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(NimbusError::invalid_input(field, "is required")),
        Some(v) => v.as_str().ok_or_else(|| NimbusError::invalid_input(field, "must be a string")),
    }
}

fn user_fields(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Fields, NimbusError> {
    let fields = match obj.get(key) {
        None | Some(Value::Null) => return Err(NimbusError::invalid_input(field, "is required")),
        Some(v) => object(v, field)?.clone(),
    };
    validate_user_fields(&fields, field)?;
    Ok(fields)
}

/// Validates a job or cron target (`mutation`). A `function` target's shape is checked here;
/// that the function exists, is a mutation or action and takes these args is checked against
/// the tenant's deployment by [`crate::functions::check_target`].
pub fn parse_target(value: &Value) -> Result<Target, NimbusError> {
    let obj = object(value, "mutation")?;
    let kind = string(obj, "type", "mutation.type")?;
    if kind == "function" {
        let name = string(obj, "name", "mutation.name")?.to_owned();
        let args = match obj.get("args") {
            None | Some(Value::Null) => json!({}),
            Some(args @ Value::Object(_)) => args.clone(),
            Some(_) => return Err(NimbusError::invalid_input("mutation.args", "must be an object")),
        };
        return Ok(Target::Function { name, args });
    }
    if !matches!(kind, "insert" | "update" | "delete") {
        return Err(NimbusError::invalid_input("mutation.type", "must be insert, update, delete or function"));
    }
    let table = TableName::parse(string(obj, "table", "mutation.table")?, "mutation.table")?;
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(DocumentId::parse(id, "mutation.id")?),
        Some(_) => return Err(NimbusError::invalid_input("mutation.id", "must be a string")),
    };
    let required = |id: Option<DocumentId>| id.ok_or_else(|| NimbusError::invalid_input("mutation.id", "is required"));
    Ok(match kind {
        "insert" => Target::Insert { table, fields: user_fields(obj, "fields", "mutation.fields")?, id },
        "update" => Target::Update { table, id: required(id)?, patch: user_fields(obj, "patch", "mutation.patch")? },
        _ => Target::Delete { table, id: required(id)? },
    })
}

/// Validates a cron `schedule`.
pub fn parse_schedule(value: &Value) -> Result<Schedule, NimbusError> {
    let obj = object(value, "schedule")?;
    match string(obj, "type", "schedule.type")? {
        "interval" => {
            let seconds =
                obj.get("seconds").ok_or_else(|| NimbusError::invalid_input("schedule.seconds", "is required"))?;
            let seconds = seconds
                .as_u64()
                .ok_or_else(|| NimbusError::invalid_input("schedule.seconds", "must be a positive integer"))?;
            Schedule::interval(seconds)
        }
        "cron" => {
            let expression = string(obj, "expression", "schedule.expression")?;
            let timezone = match obj.get("timezone") {
                None | Some(Value::Null) => None,
                Some(Value::String(tz)) => Some(tz.as_str()),
                Some(_) => return Err(NimbusError::invalid_input("schedule.timezone", "must be a string")),
            };
            Schedule::cron(expression, timezone)
        }
        _ => Err(NimbusError::invalid_input("schedule.type", "must be 'interval' or 'cron'")),
    }
}

/// `ScheduledJob`: a pending job.
pub fn scheduled_job_json(job: &Job) -> Value {
    json!({ "id": job.id, "run_at": job.run_at, "mutation": job.target.to_json(), "created_at": job.created_at })
}

/// `JobStatus`: a job in any state.
pub fn job_status_json(job: &Job) -> Value {
    json!({
        "id": job.id, "state": job.state.as_str(), "run_at": job.run_at, "created_at": job.created_at,
        "started_at": job.started_at, "finished_at": job.finished_at, "attempts": job.attempts,
        "mutation": job.target.to_json(), "error": job.error, "error_code": job.error_code,
        "value": job.value,
    })
}

/// `ScheduledJobResult`: a finished job.
pub fn job_result_json(job: &Job) -> Value {
    json!({
        "id": job.id, "run_at": job.run_at, "finished_at": job.finished_at,
        "mutation": job.target.to_json(), "outcome": job.state.as_str(), "error": job.error,
        "error_code": job.error_code, "value": job.value,
    })
}

/// `CronJob`.
pub fn cron_json(cron: &Cron) -> Value {
    json!({
        "name": cron.name, "schedule": cron.schedule, "mutation": cron.target.to_json(),
        "enabled": cron.enabled, "last_run": cron.last_run,
        "next_run": if cron.enabled { cron.next_run } else { None }, "created_at": cron.created_at,
    })
}

/// `CronRun`.
pub fn cron_run_json(run: &CronRun) -> Value {
    json!({
        "run_id": run.run_id, "scheduled_at": run.scheduled_at, "started_at": run.started_at,
        "finished_at": run.finished_at, "outcome": run.outcome, "error": run.error,
        "error_code": run.error_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(value: Value) -> String {
        let error = parse_target(&value).expect_err("must fail");
        error.detail.and_then(|d| d["field"].as_str().map(str::to_owned)).unwrap_or_else(|| error.code.as_str().into())
    }

    #[test]
    fn targets_are_validated_with_field_paths() {
        assert_eq!(field(json!([])), "mutation");
        assert_eq!(field(json!({"table": "t"})), "mutation.type");
        assert_eq!(field(json!({"type": "upsert", "table": "t"})), "mutation.type");
        assert_eq!(field(json!({"type": "insert", "table": "bad table", "fields": {}})), "mutation.table");
        assert_eq!(field(json!({"type": "insert", "table": "t"})), "mutation.fields");
        assert!(field(json!({"type": "insert", "table": "t", "fields": {"_id": 1}})).starts_with("mutation.fields"));
        assert_eq!(field(json!({"type": "update", "table": "t", "patch": {}})), "mutation.id");
        assert_eq!(field(json!({"type": "delete", "table": "t", "id": "a/b"})), "mutation.id");
        assert_eq!(field(json!({"type": "function", "args": {}})), "mutation.name");
        assert_eq!(field(json!({"type": "function", "name": "x:y", "args": []})), "mutation.args");
        assert!(parse_target(&json!({"type": "function", "name": "x:y"})).is_ok());
        assert!(parse_target(&json!({"type": "insert", "table": "t", "fields": {}, "id": null})).is_ok());
    }

    #[test]
    fn cron_names() {
        for bad in ["", " x", "x ", "a/b", "a\u{7}b"] {
            assert!(check_cron_name(bad, "name").is_err(), "{bad:?}");
        }
        assert!(check_cron_name(&"n".repeat(129), "name").is_err());
        assert!(check_cron_name("daily digest: ünïcode", "name").is_ok());
    }
}
