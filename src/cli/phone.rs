//! `provisor phone …`: sites, numbers, the bulk phone CSV.

use clap::Subcommand;
use serde_json::{json, Value};

use super::{cli_env, open, SystemClock};
use super::{progress_bar, ProgressReader};
use crate::error::{AppError, AppResult};
use crate::provisioning::{Actor, Source};
use crate::service;

#[derive(Debug, Subcommand)]
pub enum PhoneCmd {
    /// Phone sites.
    #[command(subcommand)]
    Site(SiteCmd),
    /// The direct-number pool.
    #[command(subcommand)]
    Numbers(NumbersCmd),
    /// Bulk phone CSV (Zoom's columns). Bad rows are reported, good rows apply.
    Import {
        #[arg(long)]
        account: String,
        #[arg(long)]
        file: std::path::PathBuf,
        /// merge: absent columns keep their value; replace: a row is the whole profile.
        #[arg(long, default_value = "merge")]
        mode: String,
        /// Print every change (removals first) and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SiteCmd {
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        /// 1 to 3 digits.
        #[arg(long)]
        code: String,
        /// Digits of a short extension (2–6, default 4).
        #[arg(long)]
        extension_length: Option<i32>,
    },
    List {
        #[arg(long)]
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NumbersCmd {
    /// Add numbers (any common notation; stored E.164).
    Add {
        #[arg(long)]
        account: String,
        #[arg(required = true)]
        numbers: Vec<String>,
    },
}

/// Runs one `provisor phone` verb.
pub(super) fn run(database_url: &str, cmd: PhoneCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    match cmd {
        PhoneCmd::Site(SiteCmd::Create { account, name, code, extension_length }) => {
            let new = service::phone::NewSite { name, code, extension_length };
            let v = db.write_blocking(|c| service::phone::create_site(c, &env, &actor, &account, &new))?;
            Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        PhoneCmd::Site(SiteCmd::List { account }) => {
            let v = db.read_blocking(|c| {
                let rows = crate::store::phone::sites(c, &account)?;
                rows.into_iter().map(|r| service::phone::site_view(c, r)).collect::<AppResult<Vec<_>>>()
            })?;
            Ok(Some(json!({ "sites": v })))
        }
        PhoneCmd::Numbers(NumbersCmd::Add { account, numbers }) => {
            let r =
                db.write_blocking(|c| service::phone::add_numbers(c, &env, &actor, Source::Cli, &account, &numbers))?;
            Ok(Some(serde_json::to_value(r).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        PhoneCmd::Import { account, file, mode, dry_run } => {
            let mode = service::phone::parse_mode(Some(&mode))?;
            let f = std::fs::File::open(&file).map_err(|e| {
                AppError::bad_request("cannot_read_file", format!("cannot open {}: {e}", file.display()))
            })?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = progress_bar(size);
            let reader = ProgressReader { inner: std::io::BufReader::with_capacity(1 << 16, f), bar: bar.clone() };
            let report =
                service::phone::import_csv(&db, || cli_env(&clock), &actor, &account, reader, mode, dry_run, |_| {})?;
            bar.finish_and_clear();
            Ok(Some(serde_json::to_value(report).map_err(|e| AppError::Internal(e.to_string()))?))
        }
    }
}
