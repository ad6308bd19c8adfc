//! `nimbus db insert|get|query|rm`: a tenant's documents through the running server's
//! `/api/tenants/{t}/documents` and `/query` routes (data.md "Documents", "Queries"). The server
//! validates names, fields and filters; this file only gathers and prints.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::Failure;
use crate::client::{ServerArgs, TenantArg, connect, segment};

/// `nimbus db …`.
#[derive(Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
    #[command(flatten)]
    tenant: TenantArg,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The db subcommands.
#[derive(Subcommand)]
enum DbCommand {
    /// Insert a document; prints its id.
    Insert {
        /// The table (created by its first insert).
        table: String,
        /// The document's fields, a JSON object.
        #[arg(value_parser = parse_object)]
        fields: Value,
    },
    /// Print a document (JSON).
    Get {
        /// The table.
        table: String,
        /// The document's `_id`.
        id: String,
    },
    /// Print the documents of a table that match every filter, one JSON document a line.
    Query {
        /// The table.
        table: String,
        /// A filter `{"field", "op", "value"}` or an array of them; repeatable, all ANDed.
        #[arg(long, value_parser = parse_filters)]
        filter: Vec<Vec<Value>>,
        /// Order by this field (a dot path allowed); default `_id`.
        #[arg(long)]
        order: Option<String>,
        /// Descending order.
        #[arg(long, requires = "order")]
        desc: bool,
        /// At most this many documents.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Delete a document.
    #[command(visible_alias = "delete")]
    Rm {
        /// The table.
        table: String,
        /// The document's `_id`.
        id: String,
    },
}

/// A JSON object argument (anything else is a usage error, exit 2).
fn parse_object(raw: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("must be a JSON object, e.g. '{\"title\": \"write spec\"}'".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// `--filter`: one filter object or an array of them.
fn parse_filters(raw: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => Ok(vec![value]),
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err("must be a JSON object such as '{\"field\": \"done\", \"op\": \"eq\", \"value\": false}', \
                      or an array of them"
            .to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Runs a db subcommand.
pub fn run(args: DbArgs) -> Result<(), Failure> {
    let tenant = segment(args.tenant.get()?);
    let live = connect(args.server.url)?;
    let json = args.server.json;
    let base = format!("/api/tenants/{tenant}");
    match args.command {
        DbCommand::Insert { table, fields } => {
            let answer =
                live.call_json("POST", &format!("{base}/documents"), &json!({ "table": table, "fields": fields }))?;
            if json {
                println!("{answer}");
            } else {
                println!("{}", answer["id"].as_str().unwrap_or_default());
            }
        }
        DbCommand::Get { table, id } => {
            let answer = live.call("GET", &format!("{base}/documents/{}/{}", segment(&table), segment(&id)), None)?;
            println!("{}", if json { &answer } else { &answer["document"] });
        }
        DbCommand::Query { table, filter, order, desc, limit } => {
            let mut body = json!({ "table": table, "filters": filter.into_iter().flatten().collect::<Vec<_>>() });
            if let Some(field) = order {
                body["order"] = json!({ "field": field, "direction": if desc { "desc" } else { "asc" } });
            }
            if let Some(limit) = limit {
                body["limit"] = limit.into();
            }
            let answer = live.call_json("POST", &format!("{base}/query"), &body)?;
            if json {
                println!("{answer}");
            } else {
                for document in answer["data"].as_array().into_iter().flatten() {
                    println!("{document}");
                }
            }
        }
        DbCommand::Rm { table, id } => {
            live.call("DELETE", &format!("{base}/documents/{}/{}", segment(&table), segment(&id)), None)?;
            if json {
                println!("{}", json!({ "deleted": id }));
            } else {
                println!("{id}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_an_object_or_an_array() {
        let one = json!({ "field": "a", "op": "eq", "value": 1 });
        assert_eq!(parse_filters(&one.to_string()), Ok(vec![one.clone()]));
        assert_eq!(parse_filters(&json!([one, one]).to_string()).map(|f| f.len()), Ok(2));
        assert!(parse_filters("3").is_err());
        assert!(parse_object("[]").is_err());
    }
}
