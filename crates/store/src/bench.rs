//! Bulk seeding for benchmarks: many customers and timeline entries, fast, straight
//! into the tables (not through the API, which the benchmarks then measure).

use crate::sql::{Builder, q};
use crate::{Result, Store, new_public_id};
use kefu_domain::text;

impl Store {
    /// Inserts `customers` customers with `entries_per_customer` timeline entries each,
    /// spread over the past year. Returns the public ids of the customers. Calls
    /// `progress` with the number of rows written so far.
    pub async fn seed_for_bench(
        &self,
        customers: usize,
        entries_per_customer: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<String>> {
        let now = self.now_ms();
        let mut ids = Vec::with_capacity(customers);
        let mut written = 0usize;
        const CUSTOMER_BATCH: usize = 500;
        let mut next = 0usize;
        while next < customers {
            let batch = CUSTOMER_BATCH.min(customers - next);
            let mut conn = self.write().await?;
            let mut builder = Builder::new(
                "INSERT INTO customers (public_id, kind, name, value_class, position, lifecycle, lifecycle_changed_at, search_text, sort_key, created_at, updated_at, version) VALUES ",
            );
            let mut batch_ids = Vec::with_capacity(batch);
            for i in 0..batch {
                let n = next + i;
                let name = format!("客户{n:07} Customer {n}");
                let id = new_public_id();
                if i > 0 {
                    builder.push(", ");
                }
                builder.values(&[
                    id.clone().into(),
                    "person".into(),
                    name.clone().into(),
                    "ordinary".into(),
                    "external".into(),
                    ["potential", "target", "current", "lost"][n % 4].into(),
                    now.into(),
                    text::search_key(&name).into(),
                    text::sort_key(&name).into(),
                    now.into(),
                    now.into(),
                    1i64.into(),
                ]);
                batch_ids.push(id);
            }
            builder.push(" RETURNING id");
            let keys: Vec<i64> = conn
                .fetch_all(builder.query())
                .await?
                .iter()
                .map(|row| row.get::<i64>("id"))
                .collect::<Result<_>>()?;
            // Timeline rows: 13 values each; stay under SQLite's 32766 bound parameters.
            let mut rows = Vec::new();
            for key in &keys {
                for e in 0..entries_per_customer {
                    rows.push((*key, e));
                }
            }
            for chunk in rows.chunks(2000) {
                let mut builder = Builder::new(
                    "INSERT INTO timeline_entries (public_id, customer_id, kind, channel, direction, interaction_type, content_type, summary, data, occurred_at, created_at) VALUES ",
                );
                for (i, (key, e)) in chunk.iter().enumerate() {
                    if i > 0 {
                        builder.push(", ");
                    }
                    let channel = ["email", "phone", "live_chat", "face_to_face"][e % 4];
                    let interaction = [
                        "non_personal",
                        "indirect_personal",
                        "indirect_personal",
                        "face_to_face",
                    ][e % 4];
                    let at = now - ((*e as i64 + 1) * 3_600_000 * 7) - (*key % 1000);
                    builder.values(&[
                        new_public_id().into(),
                        (*key).into(),
                        "message".into(),
                        channel.into(),
                        if e % 2 == 0 {
                            "customer_initiated"
                        } else {
                            "company_initiated"
                        }
                        .into(),
                        interaction.into(),
                        "information".into(),
                        format!("第{e}次联系：订单查询 / contact {e}: order enquiry").into(),
                        "{}".into(),
                        at.into(),
                        at.into(),
                    ]);
                }
                conn.execute(builder.query()).await?;
                written += chunk.len();
            }
            conn.commit().await?;
            written += batch;
            progress(written);
            ids.extend(batch_ids);
            next += batch;
        }
        Ok(ids)
    }

    /// Makes PostgreSQL's planner aware of the seeded volume. SQLite is left without
    /// statistics, as kefu runs it: with STAT4 tables every bound parameter would make
    /// SQLite re-plan the statement.
    pub async fn analyze(&self) -> Result<()> {
        if self.dialect() == crate::Dialect::Sqlite {
            return Ok(());
        }
        let mut conn = self.write().await?;
        conn.execute(q("ANALYZE")).await?;
        conn.commit().await
    }
}
