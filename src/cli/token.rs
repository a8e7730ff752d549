//! `dipledger token create|list|revoke`: the token file of a data directory, managed offline or
//! while a server runs on it (the file is not in sled; the server notices changes within
//! `auth::tokens::TOKEN_RELOAD_INTERVAL`). Creating the first token turns authentication on for
//! the directory, for good.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use dipledger::auth::access_log;
use dipledger::auth::tokens::{self, TokenEntry, TokenFile};
use dipledger::auth::Role;
use dipledger::log::{Clock, SystemClock};
use dipledger::time::Timestamp;
use serde_json::json;

/// Who the access log says managed tokens: whoever can write the data directory.
pub const LOCAL_ADMIN: &str = "local-admin";

/// The longest lifetime `--expires` accepts (ten years).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 366 * 24 * 60 * 60);

/// `dipledger token ...`
#[derive(Debug, Subcommand)]
pub enum TokenVerb {
    /// Create a token; prints it once, on the last line (or as JSON with --json).
    #[command(
        after_help = "Example:\n  dipledger token create --data-dir ./data --name embassy-tripoli --role recorder --expires 90d"
    )]
    Create {
        /// The data directory.
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The principal's name, recorded as `recorded_by` on what it records.
        #[arg(long)]
        name: String,
        /// A role: reader, recorder, auditor or admin (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Lifetime: a number and a unit, d, h or m (`90d`); without it the token does not expire.
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the tokens (ids, principals, roles, dates; never the tokens themselves).
    List {
        /// The data directory.
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id; it stops working within a second, also on a running server.
    Revoke {
        /// The token's id (from `token list`).
        id: String,
        /// The data directory.
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

/// Runs a `token` verb.
pub fn token(verb: TokenVerb) -> anyhow::Result<String> {
    match verb {
        TokenVerb::Create {
            data_dir,
            name,
            roles,
            expires,
            json,
        } => create(&data_dir, &name, &roles, expires.as_deref(), json),
        TokenVerb::List { data_dir, json } => list(&data_dir, json),
        TokenVerb::Revoke { id, data_dir } => {
            let now = SystemClock.now();
            let entry = tokens::update(existing(&data_dir)?, |file| file.revoke(&id, now))?;
            let detail = format!("token {} of {}", entry.id, entry.principal);
            access_log::append(&data_dir, LOCAL_ADMIN, "token.revoke", "OK", &detail, now)?;
            Ok(format!("revoked token {} of {}\n", entry.id, entry.principal))
        }
    }
}

fn existing(data_dir: &Path) -> anyhow::Result<&Path> {
    if !data_dir.is_dir() {
        bail!(
            "{} is not a data directory (start `dipledger serve --data-dir` on it first)",
            data_dir.display()
        );
    }
    Ok(data_dir)
}

fn create(
    data_dir: &Path,
    name: &str,
    roles: &[String],
    expires: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let roles = roles
        .iter()
        .map(|role| {
            Role::parse(role)
                .with_context(|| format!("--role {role:?} is not one of reader, recorder, auditor, admin"))
        })
        .collect::<anyhow::Result<Vec<Role>>>()?;
    let now = SystemClock.now();
    let expires_at = expires
        .map(|text| lifetime(text).map(|life| later(now, life)))
        .transpose()?;
    let (entry, secret) = tokens::update(existing(data_dir)?, |file| {
        file.create(name, &roles, expires_at, now)
    })?;
    let detail = format!(
        "token {} for {} ({})",
        entry.id,
        entry.principal,
        roles_text(&entry)
    );
    access_log::append(data_dir, LOCAL_ADMIN, "token.create", "OK", &detail, now)?;
    if json {
        let mut document = entry_json(&entry);
        document["token"] = json!(secret);
        return Ok(format!("{document:#}\n"));
    }
    Ok(format!(
        "created token {} for {} ({}), expires {}\nthe token (shown once; keep it secret):\n{secret}\n",
        entry.id,
        entry.principal,
        roles_text(&entry),
        entry.expires_at.map_or("never".into(), Timestamp::to_rfc3339),
    ))
}

fn list(data_dir: &Path, json: bool) -> anyhow::Result<String> {
    let file = TokenFile::load(existing(data_dir)?)?;
    if json {
        let entries: Vec<_> = file.tokens.iter().map(entry_json).collect();
        return Ok(format!(
            "{:#}\n",
            json!({"auth_enabled": file.auth_enabled, "tokens": entries})
        ));
    }
    let mut out = format!(
        "{} token(s); authentication {}\n",
        file.tokens.len(),
        if file.auth_enabled {
            "on"
        } else {
            "off (development mode)"
        }
    );
    for entry in &file.tokens {
        let state = match (entry.revoked_at, entry.expires_at) {
            (Some(at), _) => format!("revoked {}", at.to_rfc3339()),
            (None, Some(at)) => format!("expires {}", at.to_rfc3339()),
            (None, None) => "no expiry".into(),
        };
        out.push_str(&format!(
            "{}  {}  {}  {state}\n",
            entry.id,
            entry.principal,
            roles_text(entry)
        ));
    }
    Ok(out)
}

fn roles_text(entry: &TokenEntry) -> String {
    entry
        .roles
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn entry_json(entry: &TokenEntry) -> serde_json::Value {
    json!({
        "id": entry.id,
        "principal": entry.principal,
        "roles": entry.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
        "created_at": entry.created_at.to_rfc3339(),
        "expires_at": entry.expires_at.map(Timestamp::to_rfc3339),
        "revoked_at": entry.revoked_at.map(Timestamp::to_rfc3339),
    })
}

/// `90d`, `12h`, `30m`: at most [`MAX_TOKEN_LIFETIME`].
fn lifetime(text: &str) -> anyhow::Result<Duration> {
    let invalid = || anyhow::anyhow!("--expires {text:?} is not a lifetime such as 90d, 12h or 30m");
    let unit = text.chars().last().ok_or_else(invalid)?;
    let amount: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| invalid())?;
    let seconds = match unit {
        'd' => amount.checked_mul(86_400),
        'h' => amount.checked_mul(3_600),
        'm' => amount.checked_mul(60),
        _ => None,
    }
    .ok_or_else(invalid)?;
    let life = Duration::from_secs(seconds);
    if life.is_zero() || life > MAX_TOKEN_LIFETIME {
        bail!("--expires {text:?} must be more than nothing and at most ten years");
    }
    Ok(life)
}

fn later(now: Timestamp, life: Duration) -> Timestamp {
    Timestamp::from_unix_micros(now.unix_micros().saturating_add(life.as_micros() as i64))
}
