//! Queries the SCIM service needs beyond the generic user and group functions: filtered,
//! sorted pages of ids from a WHERE clause the SCIM layer built (`scim::query` turns a
//! filter into SQL with bind values), batch loads for rendering list pages without one
//! query per resource, and the member `display` an identity provider sent.
//!
//! The WHERE text uses `?` placeholders; they become `$n` on PostgreSQL here, so the SCIM
//! layer writes one SQL dialect and never splices a value into the text.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::models::{GroupRow, PhoneSiteRow, UserPhoneRow, UserRow};
use super::schema::{group_members as gm, groups, users};
use super::DbConn;

/// A value bound to a `?` of a [`Where`].
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Time(NaiveDateTime),
}

/// A boolean SQL expression over one table (`users` or `groups`), with its bind values in
/// placeholder order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Where {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl Where {
    pub fn new(sql: impl Into<String>, binds: Vec<Bind>) -> Where {
        Where { sql: sql.into(), binds }
    }
}

/// Which resource table a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Groups,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "groups",
        }
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `?` → `$1, $2, …` for PostgreSQL.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

macro_rules! bound_query {
    ($c:ident, $sql:expr, $binds:expr, $backend:ty, $row:ty) => {{
        let mut q = diesel::sql_query($sql).into_boxed::<$backend>();
        for b in $binds {
            q = match b {
                Bind::Text(s) => q.bind::<Text, _>(s.clone()),
                Bind::Time(t) => q.bind::<Timestamp, _>(*t),
            };
        }
        q.load::<$row>($c)
    }};
}

fn load_rows<R>(conn: &mut DbConn, sql: &str, binds: &[Bind]) -> QueryResult<Vec<R>>
where
    R: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
{
    match conn {
        DbConn::Sqlite(c) => bound_query!(c, sql.to_owned(), binds, diesel::sqlite::Sqlite, R),
        DbConn::Pg(c) => bound_query!(c, numbered(sql), binds, diesel::pg::Pg, R),
    }
}

fn scoped(table: Table, account: &str, filter: Option<&Where>) -> (String, Vec<Bind>) {
    // A SCIM token's users: its account's, and those its IdP placed into sub accounts.
    let (mut sql, mut binds) = match table {
        Table::Users => (
            "(users.account_id = ? OR users.placed_by = ?)".to_owned(),
            vec![Bind::Text(account.to_owned()), Bind::Text(account.to_owned())],
        ),
        Table::Groups => ("groups.account_id = ?".to_owned(), vec![Bind::Text(account.to_owned())]),
    };
    if let Some(w) = filter {
        sql.push_str(" AND (");
        sql.push_str(&w.sql);
        sql.push(')');
        binds.extend(w.binds.iter().cloned());
    }
    (sql, binds)
}

/// Ids of one page of an account's resources matching `filter`, in `order` (an ORDER BY
/// list the caller built from known column names).
pub fn page_ids(
    conn: &mut DbConn,
    table: Table,
    account: &str,
    filter: Option<&Where>,
    order: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<String>> {
    let (cond, binds) = scoped(table, account, filter);
    let sql = format!(
        "SELECT {t}.id AS id FROM {t} WHERE {cond} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        t = table.name(),
        limit = limit.max(0),
        offset = offset.max(0)
    );
    Ok(load_rows::<IdRow>(conn, &sql, &binds)?.into_iter().map(|r| r.id).collect())
}

/// How many of an account's resources match `filter`.
pub fn count(conn: &mut DbConn, table: Table, account: &str, filter: Option<&Where>) -> QueryResult<i64> {
    let (cond, binds) = scoped(table, account, filter);
    let sql = format!("SELECT COUNT(*) AS n FROM {t} WHERE {cond}", t = table.name());
    Ok(load_rows::<CountRow>(conn, &sql, &binds)?.first().map_or(0, |r| r.n))
}

/// An indexed column an identity provider looks resources up by (`userName eq …`,
/// `externalId eq …`, `id eq …`; for groups `displayName eq …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Id,
    /// `user_name_lower` / `display_name_lower`: the value must already be lowercased.
    Name,
    ExternalId,
}

/// One page of the users whose `key` equals `value`, by userName, and how many match in
/// all: a prepared, cached statement (the SQL of [`page_ids`] is prepared per call).
pub fn users_where(
    conn: &mut DbConn,
    account: &str,
    key: Key,
    value: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<UserRow>, i64)> {
    macro_rules! page {
        ($col:expr) => {{
            let rows: Vec<UserRow> = users::table
                .filter(users::account_id.eq(account).or(users::placed_by.eq(account).assume_not_null()))
                .filter($col.eq(value))
                .order(users::user_name_lower.asc())
                .limit(limit)
                .offset(offset)
                .select(UserRow::as_select())
                .load(conn)?;
            let total = if offset == 0 && (rows.len() as i64) < limit {
                rows.len() as i64
            } else {
                users::table
                    .filter(users::account_id.eq(account).or(users::placed_by.eq(account).assume_not_null()))
                    .filter($col.eq(value))
                    .count()
                    .get_result(conn)?
            };
            (rows, total)
        }};
    }
    Ok(match key {
        Key::Id => page!(users::id),
        Key::Name => page!(users::user_name_lower),
        Key::ExternalId => page!(users::external_id),
    })
}

/// Groups whose `key` equals `value` (see [`users_where`]).
pub fn groups_where(
    conn: &mut DbConn,
    account: &str,
    key: Key,
    value: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<GroupRow>, i64)> {
    macro_rules! page {
        ($col:expr) => {{
            let rows: Vec<GroupRow> = groups::table
                .filter(groups::account_id.eq(account))
                .filter($col.eq(value))
                .order(groups::display_name_lower.asc())
                .limit(limit)
                .offset(offset)
                .select(GroupRow::as_select())
                .load(conn)?;
            let total = if offset == 0 && (rows.len() as i64) < limit {
                rows.len() as i64
            } else {
                groups::table.filter(groups::account_id.eq(account)).filter($col.eq(value)).count().get_result(conn)?
            };
            (rows, total)
        }};
    }
    Ok(match key {
        Key::Id => page!(groups::id),
        Key::Name => page!(groups::display_name_lower),
        Key::ExternalId => page!(groups::external_id),
    })
}

/// Users by id, in the order of `ids` (ids of other accounts are left out).
pub fn users_by_ids(conn: &mut DbConn, account: &str, ids: &[String]) -> QueryResult<Vec<UserRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<UserRow> = users::table
        .filter(users::account_id.eq(account).or(users::placed_by.eq(account).assume_not_null()))
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)?;
    Ok(in_order(ids, rows, |r| &r.id))
}

/// Groups by id, in the order of `ids` (ids of other accounts are left out).
pub fn groups_by_ids(conn: &mut DbConn, account: &str, ids: &[String]) -> QueryResult<Vec<GroupRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<GroupRow> = groups::table
        .filter(groups::account_id.eq(account))
        .filter(groups::id.eq_any(ids))
        .select(GroupRow::as_select())
        .load(conn)?;
    Ok(in_order(ids, rows, |r| &r.id))
}

fn in_order<R>(ids: &[String], rows: Vec<R>, key: impl Fn(&R) -> &String) -> Vec<R> {
    let mut slots: Vec<Option<R>> = ids.iter().map(|_| None).collect();
    let pos: std::collections::HashMap<&str, usize> = ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    for r in rows {
        if let Some(&i) = pos.get(key(&r).as_str()) {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(r);
            }
        }
    }
    slots.into_iter().flatten().collect()
}

/// `(user id, group id, group display name)` for every membership of these users.
pub fn memberships_of(conn: &mut DbConn, user_ids: &[String]) -> QueryResult<Vec<(String, String, String)>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    gm::table
        .inner_join(groups::table.on(groups::id.eq(gm::group_id)))
        .filter(gm::user_id.eq_any(user_ids))
        .order((gm::user_id.asc(), groups::display_name_lower.asc()))
        .select((gm::user_id, groups::id, groups::display_name))
        .load(conn)
}

/// One member of a group as the SCIM Group resource shows it.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct MemberRow {
    pub group_id: String,
    pub user_id: String,
    /// What the identity provider sent as the member's `display`.
    pub display: Option<String>,
    pub user_display_name: Option<String>,
    pub user_name: String,
}

/// Members of these groups, in join order.
pub fn members_of(conn: &mut DbConn, group_ids: &[String]) -> QueryResult<Vec<MemberRow>> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    gm::table
        .inner_join(users::table.on(users::id.eq(gm::user_id)))
        .filter(gm::group_id.eq_any(group_ids))
        .order((gm::group_id.asc(), gm::created_at.asc(), gm::user_id.asc()))
        .select((gm::group_id, gm::user_id, gm::display, users::display_name, users::user_name))
        .load(conn)
}

/// The `display` stored for one member (`None`: not a member, or none stored).
pub fn member_display(conn: &mut DbConn, group: &str, user: &str) -> QueryResult<Option<String>> {
    gm::table
        .filter(gm::group_id.eq(group))
        .filter(gm::user_id.eq(user))
        .select(gm::display)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// Records (or clears) the `display` sent with a member.
pub fn set_member_display(conn: &mut DbConn, group: &str, user: &str, display: Option<&str>) -> QueryResult<()> {
    diesel::update(gm::table.filter(gm::group_id.eq(group)).filter(gm::user_id.eq(user)))
        .set(gm::display.eq(display))
        .execute(conn)
        .map(|_| ())
}

/// Which of `ids` are users of this account.
pub fn existing_user_ids(conn: &mut DbConn, account: &str, ids: &[String]) -> QueryResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    users::table.filter(users::account_id.eq(account)).filter(users::id.eq_any(ids)).select(users::id).load(conn)
}

/// Phone profiles of these users and the sites they refer to.
pub fn phones_and_sites(
    conn: &mut DbConn,
    account: &str,
    ids: &[String],
) -> QueryResult<(Vec<UserPhoneRow>, Vec<PhoneSiteRow>)> {
    let phones = super::users::phones_of(conn, ids)?;
    let sites =
        if phones.iter().any(|p| p.site_id.is_some()) { super::phone::sites(conn, account)? } else { Vec::new() };
    Ok((phones, sites))
}

/// Takes the row lock of a user for the rest of the transaction on PostgreSQL, so that a
/// read-check-write (If-Match, the pipeline's optimistic version check) of two concurrent
/// requests runs one after the other instead of failing one with a spurious 412. SQLite
/// writes are serialised already.
pub fn lock_user(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        diesel::update(
            users::table
                .filter(users::id.eq(id))
                .filter(users::account_id.eq(account).or(users::placed_by.eq(account).assume_not_null())),
        )
        .set(users::version.eq(users::version))
        .execute(c)?;
    }
    Ok(())
}

/// [`lock_user`] for a group.
pub fn lock_group(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        diesel::update(groups::table.filter(groups::id.eq(id)).filter(groups::account_id.eq(account)))
            .set(groups::version.eq(groups::version))
            .execute(c)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(numbered("a = ? AND (b = ? OR c LIKE ?)"), "a = $1 AND (b = $2 OR c LIKE $3)");
        assert_eq!(numbered("no binds"), "no binds");
    }
}
