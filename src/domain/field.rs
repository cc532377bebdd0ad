//! One field of a change: leave it, set it, or clear it. Used by every change the
//! provisioning pipeline takes (what an adapter states) and by the mapping rules (what they
//! derive), so both speak the same three words.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "value", rename_all = "snake_case")]
pub enum Field<T> {
    /// Leave the current value.
    #[default]
    Keep,
    /// Set this value.
    Set(T),
    /// Remove the value.
    Clear,
}

impl<T> Field<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Field::Keep)
    }

    /// `Set(v)` for `Some(v)`, `Clear` for `None`.
    pub fn from_option(v: Option<T>) -> Field<T> {
        match v {
            Some(v) => Field::Set(v),
            None => Field::Clear,
        }
    }

    /// The value the field ends up with, given its current value.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Field::Keep => current,
            Field::Set(v) => Some(v),
            Field::Clear => None,
        }
    }

    pub fn as_ref(&self) -> Field<&T> {
        match self {
            Field::Keep => Field::Keep,
            Field::Set(v) => Field::Set(v),
            Field::Clear => Field::Clear,
        }
    }

    /// The value, when the field sets one.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Field::Set(value) => Some(value),
            Field::Keep | Field::Clear => None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Keep => Field::Keep,
            Field::Set(v) => Field::Set(f(v)),
            Field::Clear => Field::Clear,
        }
    }
}
