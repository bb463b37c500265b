//! Keyset pagination: a page is a limit plus an opaque cursor naming the last row seen,
//! so pages stay stable while rows are added and cost the same deep into a list.

use crate::{Result, StoreError};
use base64::Engine as _;
use kefu_domain::DomainError;
use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What page to fetch.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn limit(&self) -> Result<u32> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => {
                Err(DomainError::invalid("limit", format!("{n} is outside 1–{MAX_LIMIT}")).into())
            }
        }
    }
}

/// The sort value of the last row of a page and its id, as the cursor carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort column's value (text or integer).
    pub k: CursorKey,
    pub id: i64,
    /// The sort the cursor was made for; a cursor from another sort is refused.
    pub s: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorKey {
    Int(i64),
    Text(String),
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(text: &str, sort: &str) -> Result<Cursor> {
        let invalid = || {
            StoreError::Invalid(DomainError::invalid(
                "cursor",
                "is not a cursor this list handed out",
            ))
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.s != sort {
            return Err(StoreError::Invalid(DomainError::invalid(
                "cursor",
                "belongs to another sort order",
            )));
        }
        Ok(cursor)
    }
}

/// A sort order: a column from a fixed list and a direction, parsed from `name` or
/// `-name` (descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: &'static str,
    pub text: bool,
    pub descending: bool,
    pub name: &'static str,
}

impl Sort {
    /// Parses `sort` against the allowed `(name, column, is_text)` list.
    pub fn parse(
        value: Option<&str>,
        allowed: &[(&'static str, &'static str, bool)],
        default: &str,
    ) -> Result<Sort> {
        let value = value.unwrap_or(default);
        let (descending, name) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let (name, column, text) = allowed
            .iter()
            .copied()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|(n, _, _)| *n).collect();
                StoreError::Invalid(DomainError::invalid(
                    "sort",
                    format!(
                        "`{value}` is not one of {} (prefix - for descending)",
                        names.join(", ")
                    ),
                ))
            })?;
        Ok(Sort {
            column,
            text,
            descending,
            name,
        })
    }

    /// The cursor's sort tag.
    pub fn tag(&self) -> String {
        if self.descending {
            format!("-{}", self.name)
        } else {
            self.name.to_string()
        }
    }

    /// `ORDER BY` text for `alias.column, alias.id`.
    pub fn order_by(&self, alias: &str) -> String {
        let direction = if self.descending { "DESC" } else { "ASC" };
        format!(
            "{alias}.{col} {direction}, {alias}.id {direction}",
            col = self.column
        )
    }

    /// The keyset condition for rows after the cursor, with placeholders `$a` and `$b`
    /// (numbered by the caller).
    pub fn after(&self, alias: &str, first: usize) -> String {
        let op = if self.descending { "<" } else { ">" };
        format!(
            "({alias}.{col}, {alias}.id) {op} (${first}, ${second})",
            col = self.column,
            second = first + 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let cursor = Cursor {
            k: CursorKey::Text("wang fang ".into()),
            id: 42,
            s: "name".into(),
        };
        assert_eq!(
            Cursor::decode(&cursor.encode(), "name").expect("valid"),
            cursor
        );
        assert!(Cursor::decode(&cursor.encode(), "-name").is_err());
        assert!(Cursor::decode("not-a-cursor!", "name").is_err());
        assert!(Cursor::decode("eyJ4IjoxfQ", "name").is_err());
    }

    #[test]
    fn sorts_parse_from_a_whitelist() {
        let allowed = [("name", "sort_key", true), ("created", "id", false)];
        let sort = Sort::parse(Some("-created"), &allowed, "name").expect("valid");
        assert!(sort.descending);
        assert_eq!(sort.order_by("c"), "c.id DESC, c.id DESC");
        assert!(Sort::parse(Some("password"), &allowed, "name").is_err());
    }
}
