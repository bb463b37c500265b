//! Versioned, append-only migrations, one folder per backend with the same numbered list.
//!
//! Each applied migration is recorded with a checksum; a migration edited after it was
//! applied stops kefu at start rather than leaving two databases with different schemas.

use crate::sql::{Dialect, q};
use crate::{Result, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core",
        sqlite: include_str!("../migrations/sqlite/0001_core.sql"),
        postgres: include_str!("../migrations/postgres/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "complaints",
        sqlite: include_str!("../migrations/sqlite/0002_complaints.sql"),
        postgres: include_str!("../migrations/postgres/0002_complaints.sql"),
    },
    Migration {
        version: 3,
        name: "sla",
        sqlite: include_str!("../migrations/sqlite/0003_sla.sql"),
        postgres: include_str!("../migrations/postgres/0003_sla.sql"),
    },
    Migration {
        version: 4,
        name: "satisfaction",
        sqlite: include_str!("../migrations/sqlite/0004_satisfaction.sql"),
        postgres: include_str!("../migrations/postgres/0004_satisfaction.sql"),
    },
    Migration {
        version: 5,
        name: "routing",
        sqlite: include_str!("../migrations/sqlite/0005_routing.sql"),
        postgres: include_str!("../migrations/postgres/0005_routing.sql"),
    },
    Migration {
        version: 6,
        name: "automations",
        sqlite: include_str!("../migrations/sqlite/0006_automations.sql"),
        postgres: include_str!("../migrations/postgres/0006_automations.sql"),
    },
    Migration {
        version: 7,
        name: "report_rollups",
        sqlite: include_str!("../migrations/sqlite/0007_report_rollups.sql"),
        postgres: include_str!("../migrations/postgres/0007_report_rollups.sql"),
    },
    Migration {
        version: 8,
        name: "appeal_outcomes",
        sqlite: include_str!("../migrations/sqlite/0008_appeal_outcomes.sql"),
        postgres: include_str!("../migrations/postgres/0008_appeal_outcomes.sql"),
    },
    Migration {
        version: 9,
        name: "knowledge_base",
        sqlite: include_str!("../migrations/sqlite/0009_knowledge_base.sql"),
        postgres: include_str!("../migrations/postgres/0009_knowledge_base.sql"),
    },
    Migration {
        version: 10,
        name: "message_sentiment",
        sqlite: include_str!("../migrations/sqlite/0010_message_sentiment.sql"),
        postgres: include_str!("../migrations/postgres/0010_message_sentiment.sql"),
    },
    Migration {
        version: 11,
        name: "bot_conversations",
        sqlite: include_str!("../migrations/sqlite/0011_bot_conversations.sql"),
        postgres: include_str!("../migrations/postgres/0011_bot_conversations.sql"),
    },
];

/// `NNNN_name` of every migration, in order; the test compares it with the folders.
pub const MIGRATION_NAMES: &[&str] = &[
    "0001_core",
    "0002_complaints",
    "0003_sla",
    "0004_satisfaction",
    "0005_routing",
    "0006_automations",
    "0007_report_rollups",
    "0008_appeal_outcomes",
    "0009_knowledge_base",
    "0010_message_sentiment",
    "0011_bot_conversations",
];

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already: usize,
}

fn checksum(script: &str) -> String {
    crate::token_hash(script)
}

impl Store {
    /// Applies every migration not yet applied, each in its own transaction. Several
    /// kefu processes may start at once: on PostgreSQL an advisory lock serialises them,
    /// on SQLite the immediate write lock does.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        let mut report = MigrationReport {
            applied: Vec::new(),
            already: 0,
        };
        for migration in MIGRATIONS {
            let mut conn = self.write().await?;
            let dialect = conn.dialect();
            if dialect == Dialect::Postgres {
                conn.execute(q("SELECT pg_advisory_xact_lock(7265667501)"))
                    .await?;
            }
            Store::raw_script(
                &mut conn,
                "CREATE TABLE IF NOT EXISTS kefu_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await?;
            let script = match dialect {
                Dialect::Sqlite => migration.sqlite,
                Dialect::Postgres => migration.postgres,
            };
            let applied = conn
                .fetch_optional(
                    q("SELECT checksum FROM kefu_migrations WHERE version = $1")
                        .bind(migration.version),
                )
                .await?;
            match applied {
                Some(row) => {
                    let stored: String = row.get("checksum")?;
                    if stored != checksum(script) {
                        return Err(StoreError::Database(format!(
                            "migration {:04}_{} was changed after it was applied; migrations are append-only",
                            migration.version, migration.name
                        )));
                    }
                    report.already += 1;
                }
                None => {
                    Store::raw_script(&mut conn, script).await?;
                    conn.execute(
                        q("INSERT INTO kefu_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                            .bind(migration.version)
                            .bind(migration.name)
                            .bind(checksum(script))
                            .bind(self.now_ms()),
                    )
                    .await?;
                    report
                        .applied
                        .push(format!("{:04}_{}", migration.version, migration.name));
                }
            }
            conn.commit().await?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(folder: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder);
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .expect("migrations folder")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".sql")
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_backends_have_the_same_numbered_list() {
        let expected: Vec<String> = MIGRATION_NAMES.iter().map(|s| s.to_string()).collect();
        assert_eq!(listed("sqlite"), expected);
        assert_eq!(listed("postgres"), expected);
        let from_table: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}", m.version, m.name))
            .collect();
        assert_eq!(from_table, expected);
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.version,
                index as i64 + 1,
                "versions are consecutive"
            );
        }
    }
}
