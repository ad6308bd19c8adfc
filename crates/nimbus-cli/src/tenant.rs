//! `nimbus tenant ls|create|rm`: the tenant registry through the running server's
//! `/api/tenants` routes (data.md "Tenants"). The server validates ids; this file only prints.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::Failure;
use crate::client::{ServerArgs, connect, segment};

/// `nimbus tenant …`.
#[derive(Args)]
pub struct TenantArgs {
    #[command(subcommand)]
    command: TenantCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The tenant subcommands.
#[derive(Subcommand)]
enum TenantCommand {
    /// List tenant ids, one a line.
    #[command(visible_alias = "list")]
    Ls,
    /// Create a tenant.
    Create {
        /// 1-128 characters of `[A-Za-z0-9_-]`, not starting with `_`.
        id: String,
    },
    /// Delete a tenant with everything in it (documents, functions, sandboxes).
    #[command(visible_alias = "delete")]
    Rm {
        /// The tenant.
        id: String,
    },
}

/// Runs a tenant subcommand.
pub fn run(args: TenantArgs) -> Result<(), Failure> {
    let live = connect(args.server.url)?;
    let json = args.server.json;
    match args.command {
        TenantCommand::Ls => {
            let answer = live.call("GET", "/api/tenants", None)?;
            if json {
                println!("{answer}");
            } else {
                for id in answer["tenants"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    println!("{id}");
                }
            }
        }
        TenantCommand::Create { id } => {
            let answer = live.call_json("POST", "/api/tenants", &json!({ "id": id }))?;
            if json {
                println!("{answer}");
            } else {
                println!("{}", answer["id"].as_str().unwrap_or(&id));
            }
        }
        TenantCommand::Rm { id } => {
            live.call("DELETE", &format!("/api/tenants/{}", segment(&id)), None)?;
            if json {
                println!("{}", json!({ "deleted": id }));
            } else {
                println!("{id}");
            }
        }
    }
    Ok(())
}
