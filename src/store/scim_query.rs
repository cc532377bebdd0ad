//! A SCIM filter served from SQL: the translation of the filter AST (`scim::filter`) into
//! a WHERE clause over the indexed columns, and the plan of a list request.
//!
//! The filter is first compiled against the schema (so every error is the same
//! `invalidFilter` whatever the storage), then translated. A subtree whose leaves all name
//! indexed columns (`id`, `userName`, `externalId`, `displayName`, `emails.value`,
//! `meta.created`, `meta.lastModified`, `active`; for groups `members.value`) becomes one
//! SQL condition with `and`/`or`/`not` preserved, so `userName eq "x"` is an index probe
//! and never a scan. A filter that also names other attributes is split: its translatable
//! top-level `and` terms narrow the candidates in SQL, and the whole filter is then
//! evaluated in memory on the rendered candidates — bounded by `MAX_SCAN`, beyond which
//! the request is refused with `tooMany` rather than walking a whole large account.
//!
//! Leaves never yield SQL NULL (a NULL column compares as false), so `not (…)` has SCIM's
//! meaning: `not (externalId eq "x")` matches users without an external id, as the
//! in-memory evaluator (`ne` = "no value equals") does.

use super::scim::{Bind, Key, Table, Where};
use crate::domain::users::UserStatus;
use crate::scim::error::ScimError;
use crate::scim::eval::CompiledFilter;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::query::ListParams;
use crate::scim::schema::ResourceSchema;

/// How a list request is served.
#[derive(Debug)]
pub struct Plan {
    /// Rows to read: the whole filter (when `residual` is None) or the part of it SQL
    /// can express. None: every row of the account.
    pub sql: Option<Where>,
    /// The whole filter, to evaluate in memory on the rendered candidates.
    pub residual: Option<CompiledFilter>,
    /// ORDER BY when SQL can sort; None: sort in memory by `sort_by`.
    pub order: Option<String>,
}

impl Plan {
    /// Whether SQL does everything (filter, order and paging).
    pub fn exact(&self) -> bool {
        self.residual.is_none() && self.order.is_some()
    }
}

/// Plans a list request on `table`. Errors: `invalidFilter` for filters that do not fit
/// the schema.
/// Deepest filter nesting translated to SQL (SQLite gives up somewhere above 40 levels).
const MAX_SQL_NESTING: usize = 16;

/// How deeply a filter nests (`not`, `and`/`or`, value paths).
fn nesting(f: &Filter) -> usize {
    match f {
        Filter::Compare { .. } | Filter::Present(_) => 1,
        Filter::Not(inner) => 1 + nesting(inner),
        Filter::ValuePath { filter, .. } => 1 + nesting(filter),
        Filter::And(fs) | Filter::Or(fs) => 1 + fs.iter().map(nesting).max().unwrap_or(0),
    }
}

pub fn plan(params: &ListParams, schema: &ResourceSchema, table: Table, account: &str) -> Result<Plan, ScimError> {
    let mut sql = None;
    let mut residual = None;
    if let Some(f) = &params.filter {
        let compiled = CompiledFilter::compile(f, schema)?;
        let t = Translator { schema, table, account };
        // Deeply nested filters become deeply nested SQL, which SQLite's parser refuses
        // (its stack is shallow); past this depth only the top-level conjuncts that are
        // shallow go to SQL and the rest is evaluated in memory.
        let translated = if nesting(f) > MAX_SQL_NESTING { None } else { t.translate(f) };
        match translated {
            Some(w) => sql = Some(w),
            None => {
                let parts: Vec<Where> = f
                    .conjuncts()
                    .iter()
                    .filter(|c| nesting(c) <= MAX_SQL_NESTING)
                    .filter_map(|c| t.translate(c))
                    .collect();
                sql = join(parts, " AND ");
                residual = Some(compiled);
            }
        }
    }
    let order = match &params.sort_by {
        None => Some(default_order(table)),
        Some(p) => match schema.resolve(p) {
            // Unknown to this resource type: the default order.
            Err(_) => Some(default_order(table)),
            Ok(r) => sort_column(table, &r.canonical()).map(|col| {
                let dir = if params.descending { "DESC" } else { "ASC" };
                // Resources without a value come last either way (SQLite and PostgreSQL
                // disagree on where NULL sorts).
                format!("({col} IS NULL) ASC, {col} {dir}, {t}.id ASC", t = table_name(table))
            }),
        },
    };
    Ok(Plan { sql, residual, order })
}

/// `userName eq "x"`, `externalId eq "x"`, `id eq "x"` (groups: `displayName`): the
/// lookups identity providers make before every create and update, served by one
/// prepared statement. Returns the column and the value as stored (lowercased for names).
pub fn key_lookup(params: &ListParams, schema: &ResourceSchema, table: Table) -> Option<(Key, String)> {
    let Some(Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(v) }) = &params.filter else {
        return None;
    };
    if params.sort_by.is_some() {
        return None;
    }
    let r = schema.resolve(path).ok()?;
    match (table, r.canonical().as_str()) {
        (_, "id") => Some((Key::Id, v.clone())),
        (_, "externalid") => Some((Key::ExternalId, v.clone())),
        (Table::Users, "username") => Some((Key::Name, crate::domain::users::fold_user_name(v))),
        (Table::Groups, "displayname") => Some((Key::Name, v.to_lowercase())),
        _ => None,
    }
}

fn table_name(table: Table) -> &'static str {
    match table {
        Table::Users => "users",
        Table::Groups => "groups",
    }
}

/// Without `sortBy`: by userName (groups: displayName), which a unique per-account index
/// already holds in order, so a page is an index walk and costs no extra index per write.
pub fn default_order(table: Table) -> String {
    match table {
        Table::Users => "users.user_name_lower ASC".into(),
        Table::Groups => "groups.display_name_lower ASC".into(),
    }
}

fn sort_column(table: Table, canonical: &str) -> Option<&'static str> {
    match (table, canonical) {
        (Table::Users, "id") => Some("users.id"),
        (Table::Users, "username") => Some("users.user_name_lower"),
        (Table::Users, "externalid") => Some("users.external_id"),
        (Table::Users, "displayname") => Some("users.display_name_lower"),
        (Table::Users, "meta.created") => Some("users.created_at"),
        (Table::Users, "meta.lastmodified") => Some("users.updated_at"),
        (Table::Groups, "id") => Some("groups.id"),
        (Table::Groups, "displayname") => Some("groups.display_name_lower"),
        (Table::Groups, "externalid") => Some("groups.external_id"),
        (Table::Groups, "meta.created") => Some("groups.created_at"),
        (Table::Groups, "meta.lastmodified") => Some("groups.updated_at"),
        _ => None,
    }
}

fn join(parts: Vec<Where>, op: &str) -> Option<Where> {
    if parts.is_empty() {
        return None;
    }
    let mut sql = String::new();
    let mut binds = Vec::new();
    for (i, w) in parts.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(op);
        }
        sql.push('(');
        sql.push_str(&w.sql);
        sql.push(')');
        binds.extend(w.binds);
    }
    Some(Where { sql, binds })
}

/// Where an attribute lives in SQL.
enum Column {
    /// A text column; `fold`: it holds the lowercased value (caseExact false).
    Text {
        sql: &'static str,
        fold: bool,
    },
    Time(&'static str),
    /// `active`, from `users.status`.
    Active,
    /// `emails.value`, through the `user_emails` index.
    Emails,
    /// `members.value`, through `group_members`.
    Members,
}

fn column(table: Table, canonical: &str) -> Option<Column> {
    use Column::*;
    Some(match (table, canonical) {
        (Table::Users, "id") => Text { sql: "users.id", fold: false },
        (Table::Users, "username") => Text { sql: "users.user_name_lower", fold: true },
        (Table::Users, "externalid") => Text { sql: "users.external_id", fold: false },
        (Table::Users, "displayname") => Text { sql: "users.display_name_lower", fold: true },
        (Table::Users, "meta.created") => Time("users.created_at"),
        (Table::Users, "meta.lastmodified") => Time("users.updated_at"),
        (Table::Users, "active") => Active,
        (Table::Users, "emails" | "emails.value") => Emails,
        (Table::Groups, "id") => Text { sql: "groups.id", fold: false },
        (Table::Groups, "displayname") => Text { sql: "groups.display_name_lower", fold: true },
        (Table::Groups, "externalid") => Text { sql: "groups.external_id", fold: false },
        (Table::Groups, "meta.created") => Time("groups.created_at"),
        (Table::Groups, "meta.lastmodified") => Time("groups.updated_at"),
        (Table::Groups, "members" | "members.value") => Members,
        _ => return None,
    })
}

fn like_pattern(op: CompareOp, v: &str) -> String {
    let escaped = v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    match op {
        CompareOp::Sw => format!("{escaped}%"),
        CompareOp::Ew => format!("%{escaped}"),
        _ => format!("%{escaped}%"),
    }
}

fn sql_op(op: CompareOp) -> Option<&'static str> {
    Some(match op {
        CompareOp::Eq => "=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        _ => return None,
    })
}

struct Translator<'a> {
    schema: &'a ResourceSchema,
    table: Table,
    account: &'a str,
}

impl Translator<'_> {
    fn translate(&self, f: &Filter) -> Option<Where> {
        match f {
            Filter::And(terms) => join(terms.iter().map(|t| self.translate(t)).collect::<Option<Vec<_>>>()?, " AND "),
            Filter::Or(terms) => join(terms.iter().map(|t| self.translate(t)).collect::<Option<Vec<_>>>()?, " OR "),
            Filter::Not(inner) => {
                let w = self.translate(inner)?;
                Some(Where { sql: format!("NOT ({})", w.sql), binds: w.binds })
            }
            Filter::Present(path) => self.present(path),
            Filter::Compare { path, op, value } => self.compare(path, *op, value),
            Filter::ValuePath { path, filter } => {
                // `emails[value eq "x"]`, `members[value eq "id"]`: the same as `path.value`.
                let Filter::Compare { path: inner, op, value } = filter.as_ref() else { return None };
                if inner.urn.is_some() || inner.sub.is_some() || !inner.name.eq_ignore_ascii_case("value") {
                    return None;
                }
                let mut outer = path.clone();
                outer.sub = Some("value".into());
                self.compare(&outer, *op, value)
            }
        }
    }

    fn column(&self, path: &AttrPath) -> Option<Column> {
        let r = self.schema.resolve(path).ok()?;
        column(self.table, &r.canonical())
    }

    fn present(&self, path: &AttrPath) -> Option<Where> {
        Some(match self.column(path)? {
            Column::Text { sql, .. } => Where::new(format!("{sql} IS NOT NULL AND {sql} <> ''"), vec![]),
            Column::Time(_) => Where::new("1 = 1", vec![]),
            Column::Active => return None,
            Column::Emails => self.emails_in("1 = 1", vec![]),
            Column::Members => Where::new("groups.id IN (SELECT group_id FROM group_members)", vec![]),
        })
    }

    fn emails_in(&self, cond: &str, binds: Vec<Bind>) -> Where {
        // The outer clause scopes the users (placed ones included); the account here only
        // narrows the index probe.
        let mut all = vec![Bind::Text(self.account.to_owned()), Bind::Text(self.account.to_owned())];
        all.extend(binds);
        Where::new(
            format!(
                "users.id IN (SELECT user_id FROM user_emails WHERE (account_id = ? OR user_id IN (SELECT id FROM users WHERE placed_by = ?)) AND {cond})"
            ),
            all,
        )
    }

    fn compare(&self, path: &AttrPath, op: CompareOp, value: &CompValue) -> Option<Where> {
        let col = self.column(path)?;
        match col {
            Column::Text { sql, fold } => {
                let v = match value {
                    CompValue::Null => {
                        return match op {
                            CompareOp::Eq => Some(Where::new(format!("{sql} IS NULL"), vec![])),
                            CompareOp::Ne => Some(Where::new(format!("{sql} IS NOT NULL"), vec![])),
                            _ => None,
                        }
                    }
                    CompValue::Str(s) if fold && sql == "users.user_name_lower" => {
                        crate::domain::users::fold_user_name(s)
                    }
                    CompValue::Str(s) if fold => s.to_lowercase(),
                    CompValue::Str(s) => s.clone(),
                    _ => return None,
                };
                text_compare(sql, fold, op, v)
            }
            Column::Time(sql) => {
                let CompValue::Str(s) = value else { return None };
                let t = parse_instant(s)?;
                let cmp = match op {
                    CompareOp::Ne => return Some(Where::new(format!("{sql} <> ?"), vec![Bind::Time(t)])),
                    other => sql_op(other)?,
                };
                Some(Where::new(format!("{sql} {cmp} ?"), vec![Bind::Time(t)]))
            }
            Column::Active => {
                let wanted = match value {
                    CompValue::Bool(b) => *b,
                    CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
                    CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
                    _ => return None,
                };
                let is_active = match op {
                    CompareOp::Eq => wanted,
                    CompareOp::Ne => !wanted,
                    _ => return None,
                };
                let inactive = Bind::Text(UserStatus::Inactive.as_str().to_owned());
                Some(Where::new(if is_active { "users.status <> ?" } else { "users.status = ?" }, vec![inactive]))
            }
            Column::Emails => {
                let CompValue::Str(s) = value else { return None };
                let v = s.to_lowercase();
                match op {
                    CompareOp::Eq => Some(self.emails_in("value_lower = ?", vec![Bind::Text(v)])),
                    CompareOp::Ne => {
                        let w = self.emails_in("value_lower = ?", vec![Bind::Text(v)]);
                        Some(Where::new(format!("NOT ({})", w.sql), w.binds))
                    }
                    CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                        Some(self.emails_in("value_lower LIKE ? ESCAPE '\\'", vec![Bind::Text(like_pattern(op, &v))]))
                    }
                    _ => None,
                }
            }
            Column::Members => {
                let CompValue::Str(s) = value else { return None };
                let sub = "groups.id IN (SELECT group_id FROM group_members WHERE user_id = ?)";
                match op {
                    CompareOp::Eq => Some(Where::new(sub, vec![Bind::Text(s.clone())])),
                    CompareOp::Ne => Some(Where::new(format!("NOT ({sub})"), vec![Bind::Text(s.clone())])),
                    _ => None,
                }
            }
        }
    }
}

fn text_compare(sql: &str, fold: bool, op: CompareOp, v: String) -> Option<Where> {
    Some(match op {
        CompareOp::Ne => Where::new(format!("({sql} IS NULL OR {sql} <> ?)"), vec![Bind::Text(v)]),
        // LIKE is case-insensitive on SQLite and not on PostgreSQL: only lowercased columns
        // give the same answer on both (case-exact ones are evaluated in memory).
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew if fold => Where::new(
            format!("{sql} IS NOT NULL AND {sql} LIKE ? ESCAPE '\\'"),
            vec![Bind::Text(like_pattern(op, &v))],
        ),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => return None,
        other => Where::new(format!("{sql} IS NOT NULL AND {sql} {} ?", sql_op(other)?), vec![Bind::Text(v)]),
    })
}

/// An xsd:dateTime as a UTC instant (the stored timestamps are UTC).
/// Years outside 1–9999 are left to the in-memory evaluator: not every database stores
/// them.
fn parse_instant(s: &str) -> Option<chrono::NaiveDateTime> {
    use chrono::Datelike;
    let t = match chrono::DateTime::parse_from_rfc3339(s.trim()) {
        Ok(t) => t.naive_utc(),
        Err(_) => chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f").ok()?,
    };
    (1..=9999).contains(&t.year()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::query::MAX_COUNT;
    use crate::scim::query::SEARCH_REQUEST_URN;
    use crate::scim::schema::{GROUP, USER};

    fn plan_of(filter: &str, table: Table) -> Plan {
        let p = ListParams { filter: Some(Filter::parse(filter).unwrap()), ..ListParams::default() };
        plan(&p, if table == Table::Users { &USER } else { &GROUP }, table, "acc").unwrap()
    }

    #[test]
    fn common_filters_are_single_index_conditions() {
        let p = plan_of(r#"userName eq "Bob@Example.com""#, Table::Users);
        assert!(p.exact());
        let w = p.sql.unwrap();
        assert_eq!(w.sql, "users.user_name_lower IS NOT NULL AND users.user_name_lower = ?");
        assert_eq!(w.binds, vec![Bind::Text("bob@example.com".into())]);

        let w = plan_of(r#"externalId eq "AbC""#, Table::Users).sql.unwrap();
        assert_eq!(w.binds, vec![Bind::Text("AbC".into())]);

        let w = plan_of(r#"emails[type eq "work" and value eq "x"] or emails.value eq "A@B.c""#, Table::Users);
        assert!(w.residual.is_some(), "emails.type has no column");
        let w = plan_of(r#"emails.value eq "A@B.c""#, Table::Users).sql.unwrap();
        assert!(w.sql.contains("user_emails"));
        assert_eq!(w.binds, vec![Bind::Text("acc".into()), Bind::Text("acc".into()), Bind::Text("a@b.c".into())]);

        let w = plan_of(r#"meta.lastModified gt "2026-01-01T00:00:00+01:00""#, Table::Users).sql.unwrap();
        assert_eq!(w.sql, "users.updated_at > ?");
        assert!(matches!(&w.binds[0], Bind::Time(t) if t.to_string() == "2025-12-31 23:00:00"));

        let p = plan_of(r#"displayName eq "Eng" and not (members[value eq "u1"])"#, Table::Groups);
        assert!(p.exact());
        assert!(p.sql.unwrap().sql.contains("NOT (groups.id IN"));
    }

    #[test]
    fn mixed_filters_narrow_in_sql_and_finish_in_memory() {
        let p = plan_of(r#"userName sw "a" and title eq "Boss""#, Table::Users);
        assert!(p.residual.is_some());
        assert!(p.sql.unwrap().sql.contains("LIKE"));
        let p = plan_of(r#"title eq "Boss" or userName eq "a""#, Table::Users);
        assert!(p.residual.is_some() && p.sql.is_none());
        let p = plan_of(r#"externalId co "x""#, Table::Users);
        assert!(p.residual.is_some(), "case-exact substring");
    }

    #[test]
    fn bad_filters_and_parameters_are_scim_errors() {
        let p = ListParams { filter: Some(Filter::parse("nope eq 1").unwrap()), ..ListParams::default() };
        assert_eq!(plan(&p, &USER, Table::Users, "a").unwrap_err().scim_type(), "invalidFilter");
        assert_eq!(ListParams::from_query("filter=userName%20eq").unwrap_err().scim_type(), "invalidFilter");
        assert_eq!(ListParams::from_query("count=x").unwrap_err().scim_type(), "invalidValue");
        assert_eq!(ListParams::from_query("sortOrder=up").unwrap_err().scim_type(), "invalidValue");
        let p = ListParams::from_query("startIndex=0&count=5000&sortBy=userName&sortOrder=descending").unwrap();
        assert_eq!((p.start_index, p.count, p.descending), (1, MAX_COUNT, true));
        let p = ListParams::from_search(&serde_json::json!({"schemas": [SEARCH_REQUEST_URN],
            "attributes": ["userName"], "filter": "userName eq \"a\"", "count": 2}))
        .unwrap();
        assert_eq!(p.count, 2);
        assert_eq!(p.projection.attributes.len(), 1);
    }

    #[test]
    fn sort_orders_put_missing_values_last() {
        let p = ListParams { sort_by: Some(AttrPath::new("displayName")), descending: true, ..ListParams::default() };
        let planned = plan(&p, &USER, Table::Users, "a").unwrap();
        assert_eq!(
            planned.order.as_deref(),
            Some("(users.display_name_lower IS NULL) ASC, users.display_name_lower DESC, users.id ASC")
        );
        let p = ListParams { sort_by: Some(AttrPath::new("title")), ..ListParams::default() };
        assert!(plan(&p, &USER, Table::Users, "a").unwrap().order.is_none());
    }
}
