//! Users: roles and permissions, who may change whose role, invitations, and the user CSV.

use std::io::Read;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::accounts::normalize_email;
use super::csv_lines::CsvLines;

/// A user's base role. Stored as its name (`store::types` converts at the store edge).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum BaseRole {
    Owner,
    Admin,
    Member,
}

impl BaseRole {
    pub fn as_str(self) -> &'static str {
        match self {
            BaseRole::Owner => "owner",
            BaseRole::Admin => "admin",
            BaseRole::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<BaseRole> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Some(BaseRole::Owner),
            "admin" => Some(BaseRole::Admin),
            "member" => Some(BaseRole::Member),
            _ => None,
        }
    }
}

/// Where a user is in its life. Stored as its name (`store::types` converts at the store
/// edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Invited, not accepted yet.
    Pending,
    Active,
    /// Deactivated (e.g. SCIM `active=false`): keeps its data, cannot sign in.
    Inactive,
}

impl std::fmt::Display for BaseRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for UserStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<UserStatus> {
        match s {
            "pending" => Some(UserStatus::Pending),
            "active" => Some(UserStatus::Active),
            "inactive" => Some(UserStatus::Inactive),
            _ => None,
        }
    }
}

pub use super::authz::{Permission, PermissionSet, Standing};

/// The form userNames are unique in: NFKC (fullwidth `ＡＮＮ` is `ANN`, a decomposed `é` is
/// `é`) then lowercase. Lookups fold the same way.
pub fn fold_user_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc().collect::<String>().to_lowercase()
}

/// Characters no userName may hold: control characters (tabs, NUL, …), zero-width and
/// bidirectional formatting characters (they make two names look alike, or one read
/// backwards).
pub fn check_user_name(name: &str) -> Result<(), String> {
    let bad = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
    };
    match name.chars().find(|c| bad(*c)) {
        Some(c) => Err(format!("userName holds the invisible or control character U+{:04X}", c as u32)),
        None => Ok(()),
    }
}

/// Effective permissions of a user: owner → all; admin → the admin set; member → none;
/// plus a custom role's set.
pub fn effective_permissions(role: BaseRole, custom: Option<PermissionSet>) -> PermissionSet {
    let base = match role {
        BaseRole::Owner => PermissionSet::all(),
        BaseRole::Admin => PermissionSet::admin(),
        BaseRole::Member => PermissionSet::EMPTY,
    };
    base.union(custom.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleChangeError {
    #[error("only the account owner can grant or remove the Admin role")]
    OnlyOwnerManagesAdmins,
    #[error("the owner's role cannot be changed; transfer ownership instead")]
    OwnerIsFixed,
    #[error("an account has exactly one owner; the owner role cannot be granted")]
    OneOwner,
}

/// Checks that `actor` may change a user's base role from `target_from` to `target_to`.
pub fn check_role_change(actor: Standing, target_from: BaseRole, target_to: BaseRole) -> Result<(), RoleChangeError> {
    if target_from == target_to {
        return Ok(());
    }
    if target_from == BaseRole::Owner {
        return Err(RoleChangeError::OwnerIsFixed);
    }
    if target_to == BaseRole::Owner {
        return Err(RoleChangeError::OneOwner);
    }
    let touches_admin = target_from == BaseRole::Admin || target_to == BaseRole::Admin;
    if touches_admin && !actor.manages_admins() {
        return Err(RoleChangeError::OnlyOwnerManagesAdmins);
    }
    Ok(())
}

/// Pending invitations expire after this long (and can be re-sent).
pub const INVITATION_TTL_DAYS: i64 = 30;

pub fn invitation_expiry(sent_at: DateTime<Utc>) -> DateTime<Utc> {
    sent_at + Duration::days(INVITATION_TTL_DAYS)
}

pub fn invitation_expired(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= expires_at
}

/// One valid row of the user CSV (`email, first name, last name, department, user group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserCsvRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub department: Option<String>,
    pub group: Option<String>,
}

/// A problem with one line of an imported file (the header is line 1), for every CSV the
/// product reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, thiserror::Error)]
#[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
pub struct RowError {
    pub line: u64,
    /// The column header as written in the file.
    pub column: Option<String>,
    pub message: String,
}

impl RowError {
    pub fn new(line: u64, column: Option<&str>, message: impl Into<String>) -> Self {
        RowError { line, column: column.map(str::to_owned), message: message.into() }
    }
}

/// The user CSV's columns, in order. The header row is optional: a first row whose first
/// cell is not an e-mail address is taken as the header (and its names may be in any case).
pub const USER_CSV_COLUMNS: [&str; 5] = ["email", "first name", "last name", "department", "user group"];

/// The column order a header row names (the e-mail column is required, none twice).
fn header_order(rec: &csv::StringRecord, line: u64) -> Result<[Option<usize>; 5], RowError> {
    let mut idx = [None; 5];
    for (i, cell) in rec.iter().enumerate() {
        let name = cell.trim_start_matches('\u{feff}').trim().to_ascii_lowercase().replace(['_', '-'], " ");
        if let Some(pos) = USER_CSV_COLUMNS.iter().position(|c| *c == name || (name == "group" && *c == "user group")) {
            match idx.get_mut(pos) {
                Some(Some(_)) => {
                    return Err(RowError::new(line, Some(cell), "this column appears twice in the header; keep one"))
                }
                Some(slot) => *slot = Some(i),
                None => {}
            }
        }
    }
    if idx.first().is_some_and(Option::is_none) {
        return Err(RowError {
            line,
            column: Some("email".into()),
            message: "the header has no 'email' column; expected: email,first name,last name,department,user group"
                .into(),
        });
    }
    Ok(idx)
}

/// The error of a user CSV whose header row cannot be used (no `email` column, a column
/// twice), if it has one: such a file cannot import a single row, so the API refuses it
/// whole (a streamed CLI import reports it as line 1).
pub fn user_csv_header_error(input: &[u8]) -> Option<RowError> {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(CsvLines::new(input));
    let rec = reader.into_records().filter_map(Result::ok).find(|r| !r.iter().all(str::is_empty))?;
    let line = rec.position().map(|p| p.line()).unwrap_or(0);
    let first = rec.get(0).unwrap_or("");
    if line <= 1 && !first.contains('@') {
        header_order(&rec, line).err()
    } else {
        None
    }
}

/// Streams the user CSV: yields each row, valid or not, as it is read.
pub fn read_user_csv<R: Read>(input: R) -> impl Iterator<Item = Result<UserCsvRow, RowError>> {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(CsvLines::new(input));
    let mut order: Option<[Option<usize>; 5]> = None;
    let mut records = reader.into_records();
    std::iter::from_fn(move || loop {
        let rec = records.next()?;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Some(Err(RowError { line, column: None, message: format!("unreadable CSV row: {e}") }));
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.iter().any(|c| c.contains('\n') || c.contains('\r')) {
            // No user field holds a line break: this is an unterminated quote swallowing
            // the rows after it.
            return Some(Err(RowError::new(
                line,
                None,
                "a quoted cell runs across lines; check this row for an unterminated quote",
            )));
        }
        if rec.iter().any(|c| c.contains('\0')) {
            return Some(Err(RowError::new(line, None, "the row contains a NUL character, which no field may hold")));
        }
        if order.is_none() {
            let first = rec.get(0).unwrap_or("");
            if line <= 1 && !first.contains('@') {
                // Header row: map columns by name.
                match header_order(&rec, line) {
                    Ok(idx) => order = Some(idx),
                    Err(e) => return Some(Err(e)),
                }
                continue;
            }
            order = Some([Some(0), Some(1), Some(2), Some(3), Some(4)]);
        }
        let idx = order.unwrap_or([Some(0), Some(1), Some(2), Some(3), Some(4)]);
        let cell = |k: usize| {
            idx.get(k)
                .copied()
                .flatten()
                .and_then(|i| rec.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let Some(raw_email) = cell(0) else {
            return Some(Err(RowError {
                line,
                column: Some("email".into()),
                message: "the e-mail address is missing".into(),
            }));
        };
        let email = match normalize_email(&raw_email) {
            Ok(e) => e,
            Err(e) => return Some(Err(RowError { line, column: Some("email".into()), message: e.to_string() })),
        };
        for (k, name) in [(1, "first name"), (2, "last name"), (3, "department"), (4, "user group")] {
            if cell(k).is_some_and(|v| v.chars().count() > 128) {
                return Some(Err(RowError {
                    line,
                    column: Some(name.into()),
                    message: format!("{name} is longer than 128 characters"),
                }));
            }
        }
        return Some(Ok(UserCsvRow {
            line,
            email,
            first_name: cell(1),
            last_name: cell(2),
            department: cell(3),
            group: cell(4),
        }));
    })
}

/// Writes the user CSV header and rows.
pub fn write_user_csv<W: std::io::Write>(
    out: W,
    rows: impl IntoIterator<Item = [String; 5]>,
) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(USER_CSV_COLUMNS)?;
    for r in rows {
        w.write_record(&r)?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owner_touches_admin() {
        use BaseRole::*;
        assert!(check_role_change(Standing::Owner, Member, Admin).is_ok());
        assert_eq!(check_role_change(Standing::Admin, Member, Admin), Err(RoleChangeError::OnlyOwnerManagesAdmins));
        assert_eq!(check_role_change(Standing::Admin, Admin, Member), Err(RoleChangeError::OnlyOwnerManagesAdmins));
        assert_eq!(
            check_role_change(Standing::IdentityProvider, Member, Admin),
            Err(RoleChangeError::OnlyOwnerManagesAdmins)
        );
        assert!(check_role_change(Standing::System, Member, Admin).is_ok());
        assert!(check_role_change(Standing::MasterAdmin, Member, Admin).is_ok());
        assert_eq!(check_role_change(Standing::Owner, Owner, Member), Err(RoleChangeError::OwnerIsFixed));
        assert_eq!(check_role_change(Standing::Owner, Member, Owner), Err(RoleChangeError::OneOwner));
        assert!(check_role_change(Standing::Admin, Member, Member).is_ok());
    }

    #[test]
    fn permissions() {
        use crate::domain::authz::Area;
        let sub = Permission::edit(Area::SubAccounts);
        assert!(effective_permissions(BaseRole::Owner, None).contains(sub));
        assert!(!effective_permissions(BaseRole::Admin, None).contains(sub));
        let custom: PermissionSet = [sub].into_iter().collect();
        assert!(effective_permissions(BaseRole::Admin, Some(custom)).contains(sub));
        assert!(effective_permissions(BaseRole::Member, None).is_empty());
    }

    #[test]
    fn invitation_window() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let exp = invitation_expiry(t0);
        assert!(!invitation_expired(exp, t0 + Duration::days(29)));
        assert!(invitation_expired(exp, t0 + Duration::days(30)));
    }

    #[test]
    fn user_csv_with_bad_rows() {
        let csv = "Email,First Name,Last Name,Department,User Group\n\
                   ann@example.com,Ann,Lee,Sales,EMEA\n\
                   not-an-email,Bob,,,\n\
                   ,Carl,,,\n\
                   \n\
                   dee@example.com,Dee,\"Doe, Jr\",,\n";
        let rows: Vec<_> = read_user_csv(csv.as_bytes()).collect();
        assert_eq!(rows.len(), 4);
        let ok: Vec<_> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].group.as_deref(), Some("EMEA"));
        assert_eq!(ok[1].last_name.as_deref(), Some("Doe, Jr"));
        let errs: Vec<_> = rows.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(errs[0].line, 3);
        assert_eq!(errs[1].line, 4);
    }

    #[test]
    fn user_csv_unterminated_quote_is_an_error_not_a_first_name() {
        let csv = "email,first name\nann@example.com,\"Ann\nbob@example.com,Bob\n";
        let rows: Vec<_> = read_user_csv(csv.as_bytes()).collect();
        assert!(rows.iter().all(|r| r.is_err()), "{rows:?}");
        assert!(rows[0].as_ref().unwrap_err().message.contains("unterminated quote"), "{rows:?}");
    }

    #[test]
    fn user_csv_refuses_nul_in_a_row() {
        let csv = "email,first name\nann@example.com,A\u{0}nn\nbob@example.com,Bob\n";
        let rows: Vec<_> = read_user_csv(csv.as_bytes()).collect();
        assert_eq!(rows.len(), 2);
        let e = rows[0].as_ref().unwrap_err();
        assert!(e.message.contains("NUL") && e.line == 2, "{e:?}");
        assert!(rows[1].is_ok());
    }

    #[test]
    fn user_csv_without_header() {
        let rows: Vec<_> = read_user_csv("a@example.com,A,B,C,D\n".as_bytes()).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].as_ref().unwrap().department.as_deref(), Some("C"));
    }

    #[test]
    fn user_csv_with_bare_cr_line_endings_reports_true_lines() {
        let csv = "email,first name\rann@example.com,Ann\rnot-an-email,Bob\r";
        let rows: Vec<_> = read_user_csv(csv.as_bytes()).collect();
        assert_eq!(rows[0].as_ref().unwrap().email, "ann@example.com");
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert!(user_csv_header_error(csv.as_bytes()).is_none());
    }
}
