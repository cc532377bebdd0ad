//! Domain enums stored as text: their SQL conversions, for both backends and the
//! multi-backend connection. The stored value is the enum's `as_str()` name; a value the
//! enum does not know is a deserialization error (a hand-edited or corrupt row).

use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use std::io::Write;

use super::multi_connection_impl::MultiBackend;
use crate::domain::users::{BaseRole, UserStatus};

macro_rules! stored_as_text {
    ($t:ty, $what:literal) => {
        impl ToSql<Text, Sqlite> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value(self.as_str());
                Ok(IsNull::No)
            }
        }

        impl ToSql<Text, Pg> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl ToSql<Text, MultiBackend> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value((Text, self.as_str()));
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Sqlite> for $t {
            fn from_sql(bytes: <Sqlite as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<Text, Sqlite>>::from_sql(bytes)?;
                <$t>::parse(&s).ok_or_else(|| format!("unknown {} {s:?} in the database", $what).into())
            }
        }

        impl FromSql<Text, Pg> for $t {
            fn from_sql(bytes: <Pg as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                <$t>::parse(&s).ok_or_else(|| format!("unknown {} {s:?} in the database", $what).into())
            }
        }

        impl FromSql<Text, MultiBackend> for $t {
            fn from_sql(bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                bytes.from_sql::<Self, Text>()
            }
        }
    };
}

stored_as_text!(UserStatus, "user status");
stored_as_text!(BaseRole, "role");
