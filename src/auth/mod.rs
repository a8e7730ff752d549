//! Who may do what. A principal authenticates with a bearer token (`tokens`), holds roles, and
//! one table (`rule_for`) says which role each RPC needs; one tower layer (`layer`) applies it
//! in front of every service: deny by default, UNAUTHENTICATED for a missing, malformed,
//! unknown, expired or revoked token, PERMISSION_DENIED for a role that may not call the method.
//!
//! A data directory that never held a token runs in development mode: no token is asked for and
//! every command is recorded by `api::commands::DEVELOPMENT_PRINCIPAL`. Once a token has been
//! created in a directory, authentication is on for it for good (revoking the last token never
//! reopens the door).

pub mod access_log;
pub mod layer;
pub mod limits;
pub mod tokens;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A role: what kind of calls a principal may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries, event-store reads and subscriptions.
    Reader,
    /// A reader who may also record commands.
    Recorder,
    /// A reader who may also export and read the access log.
    Auditor,
    /// Everything, including token management.
    Admin,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Recorder, Role::Auditor, Role::Admin];

    /// The role's name as tokens and flags write it (`recorder`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Recorder => "recorder",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// A role by its name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Whether holding `self` grants what `needed` grants: recorder and auditor include
    /// reader, admin includes everything.
    pub fn grants(self, needed: Role) -> bool {
        self == needed || self == Role::Admin || needed == Role::Reader
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: its name (recorded as `recorded_by`) and roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The name, e.g. `embassy-tripoli`.
    pub name: String,
    /// The roles held.
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether any role held grants `needed`.
    pub fn may(&self, needed: Role) -> bool {
        self.roles.iter().any(|role| role.grants(needed))
    }
}

/// What calling a method takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, without a token (health checks).
    Open,
    /// An authenticated principal holding a role that grants this one.
    Needs(Role),
    /// Nobody: a method the table does not know (deny by default).
    Deny,
}

/// The one authorization table, by gRPC path (`/package.Service/Method`). Documented in
/// docs/api.md ("Who may call what"); a test checks every RPC of every service has a rule.
pub fn rule_for(path: &str) -> Rule {
    let Some((service, _method)) = path.trim_start_matches('/').split_once('/') else {
        return Rule::Deny;
    };
    if path == "/dipledger.v1.EventStoreService/ReadAccessLog"
        || path == "/dipledger.v1.EventStoreService/Export"
    {
        return Rule::Needs(Role::Auditor);
    }
    match service {
        "grpc.health.v1.Health" => Rule::Open,
        // Whoever may read may verify.
        "dipledger.v1.QueryService" | "dipledger.v1.EventStoreService" | "dipledger.v1.AuditService" => {
            Rule::Needs(Role::Reader)
        }
        "dipledger.v1.CommandService" => Rule::Needs(Role::Recorder),
        "dipledger.v1.TokenService" => Rule::Needs(Role::Admin),
        // Reflection describes the API to whoever may read it.
        "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => {
            Rule::Needs(Role::Reader)
        }
        _ => Rule::Deny,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_reader_and_admin_includes_all() {
        for role in Role::ALL {
            assert!(role.grants(Role::Reader), "{role} reads");
            assert!(Role::Admin.grants(role), "admin is {role}");
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(!Role::Reader.grants(Role::Recorder));
        assert!(!Role::Auditor.grants(Role::Recorder));
        assert!(!Role::Recorder.grants(Role::Auditor));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn the_table_denies_what_it_does_not_know() {
        assert_eq!(rule_for("/grpc.health.v1.Health/Check"), Rule::Open);
        assert_eq!(
            rule_for("/dipledger.v1.CommandService/RecordMeetingHeld"),
            Rule::Needs(Role::Recorder)
        );
        assert_eq!(
            rule_for("/dipledger.v1.QueryService/GetMeeting"),
            Rule::Needs(Role::Reader)
        );
        assert_eq!(
            rule_for("/dipledger.v1.EventStoreService/Export"),
            Rule::Needs(Role::Auditor)
        );
        assert_eq!(
            rule_for("/dipledger.v1.EventStoreService/ReadAll"),
            Rule::Needs(Role::Reader)
        );
        assert_eq!(rule_for("/dipledger.v1.Unknown/Method"), Rule::Deny);
        assert_eq!(rule_for("garbage"), Rule::Deny);
    }
}
