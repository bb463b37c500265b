//! The customer archive (客户档案): customers, their contacts, lifecycle transitions,
//! cards, transactions, win-back attempts and custom fields.

use crate::audit;
use crate::page::{Cursor, CursorKey, Page, PageRequest, Sort};
use crate::sql::{Arg, Builder, Conn, JsonRow, Row, like_escape, q, q_dynamic};
use crate::timeline::{self, NewEntry};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::contacts::{ContactChannel, NormalisedContact};
use kefu_domain::customers::*;
use kefu_domain::timeline::{Channel, ContentType, Direction, TimelineKind};
use kefu_domain::{DomainError, Labelled, Timestamp, nullable, optional_text, required_text, text};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A customer as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer {
    #[serde(skip)]
    pub key: i64,
    pub id: String,
    pub kind: CustomerKind,
    pub name: String,
    /// The organisation a person belongs to.
    pub organization_id: Option<String>,
    pub value_class: ValueClass,
    pub position: Position,
    pub supply_chain_role: Option<SupplyChainRole>,
    pub lifecycle: LifecycleState,
    pub lifecycle_changed_at: Timestamp,
    /// The customer card for the lifecycle state.
    pub card: CardKind,
    pub lead_source: Option<LeadSource>,
    /// Who referred this customer (连锁介绍).
    pub referrer_id: Option<String>,
    pub qualification: Qualification,
    /// The textbook's strategy for the qualification answers.
    pub qualification_assessment: QualificationAssessment,
    pub communication_type: Option<CommunicationType>,
    pub language: String,
    /// Needs (potential card).
    pub needs: String,
    /// Hobbies (potential card).
    pub hobbies: String,
    pub notes: String,
    pub lost_at: Option<Timestamp>,
    pub lost_reason: Option<String>,
    pub contacts: Vec<Contact>,
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// For each field that has been set: its information kind and where it came from.
    pub field_sources: BTreeMap<String, FieldSource>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Contact {
    pub id: String,
    pub channel: ContactChannel,
    /// The normalised address, unique per channel.
    pub value: String,
    /// The address as it was entered.
    pub display_value: String,
    pub is_primary: bool,
    pub source: InformationSource,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldSource {
    pub kind: InformationKind,
    pub source: InformationSource,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub channel: ContactChannel,
    pub value: String,
    #[serde(default)]
    pub is_primary: bool,
}

/// What a new customer needs: only `name`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub name: String,
    pub kind: Option<CustomerKind>,
    pub organization_id: Option<String>,
    pub value_class: Option<ValueClass>,
    pub position: Option<Position>,
    pub supply_chain_role: Option<SupplyChainRole>,
    /// The starting state; `potential` unless said.
    pub lifecycle: Option<LifecycleState>,
    pub lead_source: Option<LeadSource>,
    pub referrer_id: Option<String>,
    pub qualification: Option<Qualification>,
    pub communication_type: Option<CommunicationType>,
    pub language: Option<String>,
    pub needs: Option<String>,
    pub hobbies: Option<String>,
    pub notes: Option<String>,
    pub contacts: Option<Vec<NewContact>>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
    /// Where this information came from; `agent` unless said.
    pub source: Option<InformationSource>,
}

/// A partial update. Absent fields stay; `null` clears a field that may be empty.
/// The lifecycle changes only through a transition, with a reason.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub kind: Option<CustomerKind>,
    #[serde(default, deserialize_with = "nullable")]
    pub organization_id: Option<Option<String>>,
    pub value_class: Option<ValueClass>,
    pub position: Option<Position>,
    #[serde(default, deserialize_with = "nullable")]
    pub supply_chain_role: Option<Option<SupplyChainRole>>,
    #[serde(default, deserialize_with = "nullable")]
    pub lead_source: Option<Option<LeadSource>>,
    #[serde(default, deserialize_with = "nullable")]
    pub referrer_id: Option<Option<String>>,
    pub qualification: Option<Qualification>,
    #[serde(default, deserialize_with = "nullable")]
    pub communication_type: Option<Option<CommunicationType>>,
    pub language: Option<String>,
    pub needs: Option<String>,
    pub hobbies: Option<String>,
    pub notes: Option<String>,
    /// Keys to set; a `null` value removes the key.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
    pub source: Option<InformationSource>,
}

/// A recorded lifecycle transition.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LifecycleTransition {
    pub from: Option<LifecycleState>,
    pub to: LifecycleState,
    pub reason: String,
    pub actor: String,
    pub at: Timestamp,
}

/// A purchase on the current customer card.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerTransaction {
    pub id: String,
    pub occurred_at: Timestamp,
    /// How the customer paid or bought: `online`, `store`, `bank_transfer` …
    pub method: String,
    pub amount_cents: i64,
    pub currency: String,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransaction {
    pub occurred_at: Option<Timestamp>,
    pub method: String,
    pub amount_cents: i64,
    pub currency: Option<String>,
    pub description: Option<String>,
}

/// An attempt to win back a lost customer (lost card).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WinBackAttempt {
    pub id: String,
    pub occurred_at: Timestamp,
    pub channel: Channel,
    /// `reached`, `no_answer`, `refused`, `interested`, `won_back` or free text.
    pub outcome: String,
    pub note: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWinBackAttempt {
    pub occurred_at: Option<Timestamp>,
    pub channel: Channel,
    pub outcome: String,
    pub note: Option<String>,
}

/// A customer with everything the customer page shows at once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: Customer,
    /// Who referred whom, nearest first (at most ten links).
    pub referrer_chain: Vec<CustomerRef>,
    pub lifecycle_history: Vec<LifecycleTransition>,
    /// The current card's transactions, newest first (at most 50).
    pub transactions: Vec<CustomerTransaction>,
    pub total_spent_cents: i64,
    /// The lost card's win-back attempts, newest first.
    pub win_back_attempts: Vec<WinBackAttempt>,
    /// The strategy for the customer's communication type, when it is known.
    pub communication_strategy: Option<Strategy>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Strategy {
    pub en: String,
    pub zh: String,
}

/// A custom field defined by an admin.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldDefinition {
    pub key: String,
    pub label_en: String,
    pub label_zh: String,
    pub field_type: CustomFieldType,
    #[serde(default)]
    pub options: Vec<String>,
    pub information_kind: InformationKind,
}

/// Filters for the customer list.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Substring of the name or any contact, width- and case-folded.
    pub q: Option<String>,
    pub lifecycle: Option<LifecycleState>,
    pub value_class: Option<ValueClass>,
    pub position: Option<Position>,
    pub kind: Option<CustomerKind>,
    pub lead_source: Option<LeadSource>,
    pub supply_chain_role: Option<SupplyChainRole>,
    pub sort: Option<String>,
}

pub const CUSTOMER_SORTS: &[(&str, &str, bool)] = &[
    ("name", "sort_key", true),
    ("created", "id", false),
    ("updated", "updated_at", false),
    ("lifecycle_changed", "lifecycle_changed_at", false),
];

macro_rules! customer_columns {
    () => {
        "SELECT c.id, c.public_id, c.kind, c.name, o.public_id AS organization_public_id, c.value_class, c.position, c.supply_chain_role, c.lifecycle, c.lifecycle_changed_at, c.lead_source, r.public_id AS referrer_public_id, c.qualification_need, c.qualification_ability_to_pay, c.qualification_authority, c.communication_type, c.language, c.needs, c.hobbies, c.notes, c.lost_at, c.lost_reason, c.custom_fields, c.field_sources, c.created_at, c.updated_at, c.version, c.sort_key"
    };
}
macro_rules! customer_from {
    () => {
        " FROM customers c LEFT JOIN customers o ON o.id = c.organization_id LEFT JOIN customers r ON r.id = c.referrer_id"
    };
}
const SELECT_COLUMNS: &str = customer_columns!();
const SELECT_FROM: &str = customer_from!();
const SELECT: &str = concat!(customer_columns!(), customer_from!());

pub(crate) fn parse_optional_label<T: Labelled>(row: &Row, column: &str) -> Result<Option<T>> {
    let text: Option<String> = row.get(column)?;
    text.map(|t| T::parse(&t).map_err(|e| StoreError::Database(format!("stored {column}: {e}"))))
        .transpose()
}

pub(crate) fn parse_label<T: Labelled>(row: &Row, column: &str) -> Result<T> {
    let text: String = row.get(column)?;
    T::parse(&text).map_err(|e| StoreError::Database(format!("stored {column}: {e}")))
}

fn customer_from_row(row: &Row) -> Result<Customer> {
    let lifecycle: LifecycleState = parse_label(row, "lifecycle")?;
    let qualification = Qualification {
        need: row.get("qualification_need")?,
        ability_to_pay: row.get("qualification_ability_to_pay")?,
        authority: row.get("qualification_authority")?,
    };
    let custom_fields: String = row.get("custom_fields")?;
    let field_sources: String = row.get("field_sources")?;
    Ok(Customer {
        key: row.get("id")?,
        id: row.get("public_id")?,
        kind: parse_label(row, "kind")?,
        name: row.get("name")?,
        organization_id: row.get("organization_public_id")?,
        value_class: parse_label(row, "value_class")?,
        position: parse_label(row, "position")?,
        supply_chain_role: parse_optional_label(row, "supply_chain_role")?,
        lifecycle,
        lifecycle_changed_at: Timestamp(row.get("lifecycle_changed_at")?),
        card: lifecycle.card(),
        lead_source: parse_optional_label(row, "lead_source")?,
        referrer_id: row.get("referrer_public_id")?,
        qualification_assessment: qualification.assess(),
        qualification,
        communication_type: parse_optional_label(row, "communication_type")?,
        language: row.get("language")?,
        needs: row.get("needs")?,
        hobbies: row.get("hobbies")?,
        notes: row.get("notes")?,
        lost_at: row.get::<Option<i64>>("lost_at")?.map(Timestamp),
        lost_reason: row.get("lost_reason")?,
        contacts: Vec::new(),
        custom_fields: serde_json::from_str(&custom_fields).unwrap_or_default(),
        field_sources: serde_json::from_str(&field_sources).unwrap_or_default(),
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

async fn load_contacts(conn: &mut Conn, customers: &mut [Customer]) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let mut builder = Builder::new(
        "SELECT customer_id, public_id, channel, value, display_value, is_primary, source FROM customer_contacts WHERE customer_id IN (",
    );
    let keys: Vec<String> = customers.iter().map(|c| c.key.to_string()).collect();
    // Keys are our own integers, not user input.
    builder.push(&keys.join(", "));
    builder.push(") ORDER BY customer_id, is_primary DESC, id");
    let rows = conn.fetch_all(builder.query()).await?;
    for row in &rows {
        let customer_key: i64 = row.get("customer_id")?;
        let contact = Contact {
            id: row.get("public_id")?,
            channel: parse_label(row, "channel")?,
            value: row.get("value")?,
            display_value: row.get("display_value")?,
            is_primary: row.get("is_primary")?,
            source: parse_label(row, "source")?,
        };
        if let Some(customer) = customers.iter_mut().find(|c| c.key == customer_key) {
            customer.contacts.push(contact);
        }
    }
    Ok(())
}

/// Resolves a public customer id to its key inside a transaction.
pub(crate) async fn customer_key(
    conn: &mut Conn,
    public_id: &str,
    field: &'static str,
) -> Result<i64> {
    let id =
        parse_public_id("customer", public_id).map_err(|_| missing_reference(field, public_id))?;
    let row = conn
        .fetch_optional(q("SELECT id FROM customers WHERE public_id = $1").bind(id))
        .await?;
    match row {
        Some(row) => row.get("id"),
        None => Err(missing_reference(field, public_id)),
    }
}

fn missing_reference(field: &'static str, id: &str) -> StoreError {
    StoreError::Invalid(DomainError::invalid(
        field,
        format!("no customer has id `{id}`"),
    ))
}

async fn load_customer(conn: &mut Conn, public_id: &str) -> Result<Customer> {
    fetch_customer(conn, public_id, false).await
}

/// Loads a customer inside a write transaction, locking its row on PostgreSQL so that
/// concurrent changes queue instead of overwriting each other (SQLite has one writer).
async fn lock_customer(conn: &mut Conn, public_id: &str) -> Result<Customer> {
    fetch_customer(conn, public_id, true).await
}

async fn fetch_customer(conn: &mut Conn, public_id: &str, lock: bool) -> Result<Customer> {
    let id = parse_public_id("customer", public_id)?;
    let dialect = conn.dialect();
    let mut sql = format!(
        "{}, {} AS contacts_json {} WHERE c.public_id = $1",
        SELECT_COLUMNS,
        contacts_json(dialect),
        SELECT_FROM
    );
    if lock && dialect == crate::sql::Dialect::Postgres {
        sql.push_str(" FOR UPDATE OF c");
    }
    let row = conn
        .fetch_optional(q_dynamic(sql).bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("customer", public_id))?;
    customer_with_contacts(&row)
}

/// The customer's contacts as one JSON column (see [`Dialect::json_array`]).
fn contacts_json(dialect: crate::sql::Dialect) -> String {
    dialect.json_array(
        &[
            ("id", "x.public_id"),
            ("channel", "x.channel"),
            ("value", "x.value"),
            ("display_value", "x.display_value"),
            ("is_primary", "x.is_primary"),
            ("source", "x.source"),
        ],
        "FROM customer_contacts x WHERE x.customer_id = c.id",
        "x.is_primary DESC, x.id",
    )
}

/// A customer row that carries a `contacts_json` column.
fn customer_with_contacts(row: &Row) -> Result<Customer> {
    let mut customer = customer_from_row(row)?;
    customer.contacts = JsonRow::parse_all(row, "contacts_json")?
        .iter()
        .map(|c| {
            Ok(Contact {
                id: c.text("id")?,
                channel: c.label("channel")?,
                value: c.text("value")?,
                display_value: c.text("display_value")?,
                is_primary: c.boolean("is_primary")?,
                source: c.label("source")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(customer)
}

/// Who referred whom, from `first` (the customer's referrer) upwards: at most ten
/// people, stopping where the chain loops back on itself.
async fn referrer_chain(conn: &mut Conn, first: &str) -> Result<Vec<CustomerRef>> {
    let rows = conn
        .fetch_all(
            q("WITH RECURSIVE chain (id, public_id, name, referrer_id, depth) AS (\
                 SELECT id, public_id, name, referrer_id, 1 FROM customers WHERE public_id = $1 \
                 UNION ALL \
                 SELECT r.id, r.public_id, r.name, r.referrer_id, chain.depth + 1 FROM chain JOIN customers r ON r.id = chain.referrer_id WHERE chain.depth < 10\
               ) SELECT public_id, name FROM chain ORDER BY depth")
            .bind(first),
        )
        .await?;
    let mut chain: Vec<CustomerRef> = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.get("public_id")?;
        if chain.iter().any(|r| r.id == id) {
            break;
        }
        chain.push(CustomerRef {
            id,
            name: row.get("name")?,
        });
    }
    Ok(chain)
}

async fn custom_definitions(conn: &mut Conn) -> Result<Vec<CustomFieldDefinition>> {
    let rows = conn
        .fetch_all(q("SELECT key, label_en, label_zh, field_type, options, information_kind FROM custom_field_definitions ORDER BY key"))
        .await?;
    rows.iter()
        .map(|row| {
            let options: String = row.get("options")?;
            Ok(CustomFieldDefinition {
                key: row.get("key")?,
                label_en: row.get("label_en")?,
                label_zh: row.get("label_zh")?,
                field_type: parse_label(row, "field_type")?,
                options: serde_json::from_str(&options).unwrap_or_default(),
                information_kind: parse_label(row, "information_kind")?,
            })
        })
        .collect()
}

/// Checks custom values against their definitions and merges them into `target`
/// (a `null` removes the key). Returns the kinds of the keys touched.
fn merge_custom_fields(
    definitions: &[CustomFieldDefinition],
    target: &mut Map<String, Value>,
    updates: &Map<String, Value>,
) -> Result<Vec<(String, InformationKind)>> {
    let mut touched = Vec::new();
    for (key, value) in updates {
        let definition = definitions.iter().find(|d| &d.key == key).ok_or_else(|| {
            StoreError::Invalid(DomainError::invalid(
                "custom_fields",
                format!("`{key}` is not a defined custom field"),
            ))
        })?;
        definition
            .field_type
            .check(key, value, &definition.options)?;
        if value.is_null() {
            target.remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
        touched.push((format!("custom_fields.{key}"), definition.information_kind));
    }
    Ok(touched)
}

fn note_sources(
    sources: &mut BTreeMap<String, FieldSource>,
    fields: &[&str],
    source: InformationSource,
    at: i64,
) {
    for field in fields {
        if let Some(kind) = builtin_field_kind(field) {
            sources.insert(
                field.to_string(),
                FieldSource {
                    kind,
                    source,
                    at: Timestamp(at),
                },
            );
        }
    }
}

async fn check_organization(conn: &mut Conn, public_id: &str) -> Result<i64> {
    let key = customer_key(conn, public_id, "organization_id").await?;
    let kind: String = conn
        .scalar(q("SELECT kind AS value FROM customers WHERE id = $1").bind(key))
        .await?;
    if kind != CustomerKind::Organization.as_str() {
        return Err(DomainError::invalid(
            "organization_id",
            format!("customer `{public_id}` is a person, not an organisation"),
        )
        .into());
    }
    Ok(key)
}

/// Refuses a referrer that would make the referral chain a loop.
async fn check_referrer(
    conn: &mut Conn,
    customer_key_opt: Option<i64>,
    referrer_public_id: &str,
) -> Result<i64> {
    let referrer = customer_key(conn, referrer_public_id, "referrer_id").await?;
    if let Some(own) = customer_key_opt {
        let mut cursor = Some(referrer);
        for _ in 0..64 {
            let Some(current) = cursor else { break };
            if current == own {
                return Err(DomainError::invalid(
                    "referrer_id",
                    "would make the referral chain a loop",
                )
                .into());
            }
            cursor = conn
                .fetch_optional(q("SELECT referrer_id FROM customers WHERE id = $1").bind(current))
                .await?
                .map(|row| row.get::<Option<i64>>("referrer_id"))
                .transpose()?
                .flatten();
        }
    }
    Ok(referrer)
}

/// Inserts contacts after checking each is new, naming the owner of a duplicate.
async fn insert_contacts(
    conn: &mut Conn,
    customer: i64,
    contacts: &[NewContact],
    source: InformationSource,
    at: i64,
) -> Result<()> {
    let mut seen: Vec<NormalisedContact> = Vec::new();
    for contact in contacts {
        let normalised = NormalisedContact::parse(contact.channel, &contact.value)?;
        if seen.contains(&normalised) {
            return Err(StoreError::conflict(
                "duplicate_contact",
                Some("contacts"),
                format!(
                    "{} `{}` is listed twice",
                    normalised.channel, normalised.value
                ),
            ));
        }
        let owner = conn
            .fetch_optional(
                q("SELECT c.public_id FROM customer_contacts cc JOIN customers c ON c.id = cc.customer_id WHERE cc.channel = $1 AND cc.value = $2")
                    .bind(normalised.channel.as_str())
                    .bind(normalised.value.as_str()),
            )
            .await?;
        if let Some(owner) = owner {
            let owner_id: String = owner.get("public_id")?;
            return Err(StoreError::conflict(
                "duplicate_contact",
                Some("contacts"),
                format!(
                    "{} `{}` already belongs to customer {owner_id}",
                    normalised.channel, normalised.value
                ),
            ));
        }
        conn.execute(
            q("INSERT INTO customer_contacts (public_id, customer_id, channel, value, display_value, is_primary, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(new_public_id())
                .bind(customer)
                .bind(normalised.channel.as_str())
                .bind(normalised.value.as_str())
                .bind(contact.value.trim())
                .bind(contact.is_primary)
                .bind(source.as_str())
                .bind(at),
        )
        .await
        .map_err(|error| match error {
            // Another transaction took the address between our check and our insert.
            StoreError::Conflict { code: "duplicate", .. } => StoreError::conflict(
                "duplicate_contact",
                Some("contacts"),
                format!("{} `{}` already belongs to another customer", normalised.channel, normalised.value),
            ),
            other => other,
        })?;
        seen.push(normalised);
    }
    Ok(())
}

async fn refresh_search_text(conn: &mut Conn, customer: i64) -> Result<()> {
    let name: String = conn
        .scalar(q("SELECT name AS value FROM customers WHERE id = $1").bind(customer))
        .await?;
    let rows = conn
        .fetch_all(
            q("SELECT value, display_value FROM customer_contacts WHERE customer_id = $1")
                .bind(customer),
        )
        .await?;
    let mut search = text::search_key(&name);
    for row in &rows {
        let value: String = row.get("value")?;
        let display: String = row.get("display_value")?;
        search.push('\u{1f}');
        search.push_str(&value);
        search.push('\u{1f}');
        search.push_str(&text::search_key(&display));
    }
    conn.execute(
        q("UPDATE customers SET search_text = $1, sort_key = $2 WHERE id = $3")
            .bind(search)
            .bind(text::sort_key(&name))
            .bind(customer),
    )
    .await?;
    Ok(())
}

fn to_json(customer: &Customer) -> Value {
    serde_json::to_value(customer).unwrap_or(Value::Null)
}

impl Store {
    /// Creates a customer (with contacts), records the first lifecycle state, and audits it.
    pub async fn create_customer(&self, actor: &Actor, input: NewCustomer) -> Result<Customer> {
        let mut conn = self.write().await?;
        let customer = self.create_customer_in(&mut conn, actor, input).await?;
        conn.commit().await?;
        Ok(customer)
    }

    /// The body of [`Store::create_customer`], for callers that batch (the importer).
    pub(crate) async fn create_customer_in(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        input: NewCustomer,
    ) -> Result<Customer> {
        let now = self.now_ms();
        let name = required_text("name", &input.name, 200)?;
        let kind = input.kind.unwrap_or(CustomerKind::Person);
        let lifecycle = input.lifecycle.unwrap_or(LifecycleState::Potential);
        let source = input.source.unwrap_or(InformationSource::Agent);
        let language = optional_text("language", input.language.as_deref().unwrap_or(""), 35)?;
        let needs = optional_text("needs", input.needs.as_deref().unwrap_or(""), 5000)?;
        let hobbies = optional_text("hobbies", input.hobbies.as_deref().unwrap_or(""), 2000)?;
        let notes = optional_text("notes", input.notes.as_deref().unwrap_or(""), 20000)?;
        let organization = match &input.organization_id {
            Some(id) if kind == CustomerKind::Organization => {
                return Err(DomainError::invalid(
                    "organization_id",
                    format!("an organisation cannot belong to another (`{id}`)"),
                )
                .into());
            }
            Some(id) => Some(check_organization(conn, id).await?),
            None => None,
        };
        let referrer = match &input.referrer_id {
            Some(id) => Some(check_referrer(conn, None, id).await?),
            None => None,
        };
        let mut custom = Map::new();
        let mut sources = BTreeMap::new();
        if let Some(updates) = &input.custom_fields {
            let definitions = custom_definitions(conn).await?;
            for (field, kind) in merge_custom_fields(&definitions, &mut custom, updates)? {
                sources.insert(
                    field,
                    FieldSource {
                        kind,
                        source,
                        at: Timestamp(now),
                    },
                );
            }
        }
        let mut set_fields = vec!["name", "kind", "value_class", "position", "lifecycle"];
        for (present, field) in [
            (organization.is_some(), "organization_id"),
            (input.supply_chain_role.is_some(), "supply_chain_role"),
            (input.lead_source.is_some(), "lead_source"),
            (referrer.is_some(), "referrer_id"),
            (input.qualification.is_some(), "qualification"),
            (input.communication_type.is_some(), "communication_type"),
            (!language.is_empty(), "language"),
            (!needs.is_empty(), "needs"),
            (!hobbies.is_empty(), "hobbies"),
            (!notes.is_empty(), "notes"),
            (
                input.contacts.as_ref().is_some_and(|c| !c.is_empty()),
                "contacts",
            ),
        ] {
            if present {
                set_fields.push(field);
            }
        }
        note_sources(&mut sources, &set_fields, source, now);
        let qualification = input.qualification.unwrap_or_default();
        let public_id = new_public_id();
        let (lost_at, lost_reason) = if lifecycle == LifecycleState::Lost {
            (Some(now), Some(String::new()))
        } else {
            (None, None)
        };
        let row = conn
            .fetch_one(
                q("INSERT INTO customers (public_id, kind, name, organization_id, value_class, position, supply_chain_role, lifecycle, lifecycle_changed_at, lead_source, referrer_id, qualification_need, qualification_ability_to_pay, qualification_authority, communication_type, language, needs, hobbies, notes, lost_at, lost_reason, custom_fields, field_sources, search_text, sort_key, created_by, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, '', '', $24, $9, $9, 1) RETURNING id")
                    .bind(public_id.as_str())
                    .bind(kind.as_str())
                    .bind(name.as_str())
                    .bind(organization)
                    .bind(input.value_class.unwrap_or(ValueClass::Ordinary).as_str())
                    .bind(input.position.unwrap_or(Position::External).as_str())
                    .bind(input.supply_chain_role.map(|v| v.as_str()))
                    .bind(lifecycle.as_str())
                    .bind(now)
                    .bind(input.lead_source.map(|v| v.as_str()))
                    .bind(referrer)
                    .bind(qualification.need)
                    .bind(qualification.ability_to_pay)
                    .bind(qualification.authority)
                    .bind(input.communication_type.map(|v| v.as_str()))
                    .bind(language)
                    .bind(needs)
                    .bind(hobbies)
                    .bind(notes)
                    .bind(lost_at)
                    .bind(lost_reason)
                    .bind(Value::Object(custom).to_string())
                    .bind(serde_json::to_string(&sources).unwrap_or_else(|_| "{}".into()))
                    .bind(actor.user_id),
            )
            .await?;
        let key: i64 = row.get("id")?;
        if let Some(contacts) = &input.contacts {
            insert_contacts(conn, key, contacts, source, now).await?;
        }
        refresh_search_text(conn, key).await?;
        conn.execute(
            q("INSERT INTO lifecycle_transitions (customer_id, from_state, to_state, reason, actor_id, actor_label, at) VALUES ($1, NULL, $2, $3, $4, $5, $6)")
                .bind(key)
                .bind(lifecycle.as_str())
                .bind("created")
                .bind(actor.user_id)
                .bind(actor.label.as_str())
                .bind(now),
        )
        .await?;
        let customer = load_customer(conn, &public_id).await?;
        audit::record(
            conn,
            actor,
            now,
            "create",
            "customer",
            &public_id,
            None,
            Some(&to_json(&customer)),
        )
        .await?;
        Ok(customer)
    }

    /// One customer with its contacts.
    pub async fn customer(&self, public_id: &str) -> Result<Customer> {
        load_customer(&mut self.read(), public_id).await
    }

    /// One customer with everything its page shows: the referral chain, lifecycle
    /// history, the card's transactions or win-back attempts, and the strategy for its
    /// communication type.
    pub async fn customer_detail(&self, public_id: &str) -> Result<CustomerDetail> {
        // One statement, so one round trip and one consistent view: the customer, with
        // its lists gathered into JSON columns. Only a referral chain needs a second.
        let id = parse_public_id("customer", public_id)?;
        let mut conn = self.read();
        let dialect = conn.dialect();
        let history = dialect.json_array(
            &[
                ("from", "x.from_state"),
                ("to", "x.to_state"),
                ("reason", "x.reason"),
                ("actor", "x.actor_label"),
                ("at", "x.at"),
            ],
            "FROM (SELECT id, from_state, to_state, reason, actor_label, at FROM lifecycle_transitions WHERE customer_id = c.id ORDER BY id DESC LIMIT 100) x",
            "x.id DESC",
        );
        let transactions = dialect.json_array(
            &[
                ("id", "x.public_id"),
                ("occurred_at", "x.occurred_at"),
                ("method", "x.method"),
                ("amount_cents", "x.amount_cents"),
                ("currency", "x.currency"),
                ("description", "x.description"),
            ],
            "FROM (SELECT id, public_id, occurred_at, method, amount_cents, currency, description FROM customer_transactions WHERE customer_id = c.id ORDER BY occurred_at DESC, id DESC LIMIT 50) x",
            "x.occurred_at DESC, x.id DESC",
        );
        let win_backs = dialect.json_array(
            &[
                ("id", "x.public_id"),
                ("occurred_at", "x.occurred_at"),
                ("channel", "x.channel"),
                ("outcome", "x.outcome"),
                ("note", "x.note"),
            ],
            "FROM (SELECT id, public_id, occurred_at, channel, outcome, note FROM win_back_attempts WHERE customer_id = c.id ORDER BY occurred_at DESC, id DESC LIMIT 50) x",
            "x.occurred_at DESC, x.id DESC",
        );
        // The total is summed in two halves (amount = high × 2³² + low, both SQL
        // backends truncating division toward zero) that cannot overflow a 64-bit SUM,
        // and put together saturating in Rust: a plain SUM would fail on overflow.
        let sql = format!(
            "{SELECT_COLUMNS}, {contacts} AS contacts_json, {history} AS history_json, {transactions} AS transactions_json, {win_backs} AS win_backs_json, \
             (SELECT CAST(COALESCE(SUM(amount_cents / 4294967296), 0) AS BIGINT) FROM customer_transactions WHERE customer_id = c.id) AS spent_high, \
             (SELECT CAST(COALESCE(SUM(amount_cents % 4294967296), 0) AS BIGINT) FROM customer_transactions WHERE customer_id = c.id) AS spent_low\
             {SELECT_FROM} WHERE c.public_id = $1",
            contacts = contacts_json(dialect),
        );
        let row = conn
            .fetch_optional(q_dynamic(sql).bind(id.as_str()))
            .await?
            .ok_or_else(|| StoreError::not_found("customer", public_id))?;
        let customer = customer_with_contacts(&row)?;
        let lifecycle_history = JsonRow::parse_all(&row, "history_json")?
            .iter()
            .map(|h| {
                Ok(LifecycleTransition {
                    from: h.optional_label("from")?,
                    to: h.label("to")?,
                    reason: h.text("reason")?,
                    actor: h.text("actor")?,
                    at: Timestamp(h.int("at")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let transactions = JsonRow::parse_all(&row, "transactions_json")?
            .iter()
            .map(|t| {
                Ok(CustomerTransaction {
                    id: t.text("id")?,
                    occurred_at: Timestamp(t.int("occurred_at")?),
                    method: t.text("method")?,
                    amount_cents: t.int("amount_cents")?,
                    currency: t.text("currency")?,
                    description: t.text("description")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let win_back_attempts = JsonRow::parse_all(&row, "win_backs_json")?
            .iter()
            .map(|w| {
                Ok(WinBackAttempt {
                    id: w.text("id")?,
                    occurred_at: Timestamp(w.int("occurred_at")?),
                    channel: w.label("channel")?,
                    outcome: w.text("outcome")?,
                    note: w.text("note")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let total = i128::from(row.get::<i64>("spent_high")?) * (1 << 32)
            + i128::from(row.get::<i64>("spent_low")?);
        let total_spent_cents =
            i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX });
        let referrer_chain = match &customer.referrer_id {
            Some(first) => referrer_chain(&mut conn, first).await?,
            None => Vec::new(),
        };
        let communication_strategy = customer.communication_type.map(|t| {
            let (en, zh) = t.strategy();
            Strategy {
                en: en.into(),
                zh: zh.into(),
            }
        });
        Ok(CustomerDetail {
            customer,
            referrer_chain,
            lifecycle_history,
            transactions,
            total_spent_cents,
            win_back_attempts,
            communication_strategy,
        })
    }

    /// Lists customers with filters, a sort and a cursor.
    pub async fn customers(
        &self,
        filter: &CustomerFilter,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        let limit = page.limit()?;
        let sort = Sort::parse(filter.sort.as_deref(), CUSTOMER_SORTS, "-created")?;
        let mut builder = Builder::new(SELECT);
        builder.push(" WHERE 1 = 1");
        if let Some(text) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            builder.and(
                "c.search_text LIKE $? ESCAPE '\\'",
                format!("%{}%", like_escape(&text::search_key(text))),
            );
        }
        for (column, value) in [
            ("c.lifecycle", filter.lifecycle.map(Labelled::as_str)),
            ("c.value_class", filter.value_class.map(Labelled::as_str)),
            ("c.position", filter.position.map(Labelled::as_str)),
            ("c.kind", filter.kind.map(Labelled::as_str)),
            ("c.lead_source", filter.lead_source.map(Labelled::as_str)),
            (
                "c.supply_chain_role",
                filter.supply_chain_role.map(Labelled::as_str),
            ),
        ] {
            if let Some(value) = value {
                builder.and(&format!("{column} = $?"), value);
            }
        }
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, &sort.tag())?;
            let key = match cursor.k {
                CursorKey::Int(v) => Arg::from(v),
                CursorKey::Text(t) => Arg::from(t),
            };
            builder.after(&sort, "c", key, cursor.id);
        }
        builder.push(&format!(
            " ORDER BY {} LIMIT {}",
            sort.order_by("c"),
            limit + 1
        ));
        let mut conn = self.snapshot().await?;
        let rows = conn.fetch_all(builder.query()).await?;
        let mut keys = Vec::with_capacity(rows.len());
        let mut customers = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = match (sort.column, sort.text) {
                (_, true) => CursorKey::Text(row.get("sort_key")?),
                ("id", false) => CursorKey::Int(row.get("id")?),
                ("updated_at", false) => CursorKey::Int(row.get("updated_at")?),
                (_, false) => CursorKey::Int(row.get("lifecycle_changed_at")?),
            };
            keys.push(key);
            customers.push(customer_from_row(row)?);
        }
        customers.truncate(limit as usize + 1);
        load_contacts(&mut conn, &mut customers).await?;
        let tag = sort.tag();
        let page = crate::audit::finish_page(
            customers.into_iter().zip(keys).collect::<Vec<_>>(),
            limit,
            |(customer, key)| Cursor {
                k: key.clone(),
                id: customer.key,
                s: tag.clone(),
            },
        );
        Ok(Page {
            items: page.items.into_iter().map(|(c, _)| c).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Applies a partial update. With `expected_version`, a stale version is refused.
    pub async fn update_customer(
        &self,
        actor: &Actor,
        public_id: &str,
        patch: CustomerPatch,
        expected_version: Option<i64>,
    ) -> Result<Customer> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let before = lock_customer(&mut conn, public_id).await?;
        if let Some(expected) = expected_version.filter(|expected| *expected != before.version) {
            return Err(StoreError::VersionMismatch {
                entity: "customer",
                expected,
                current: before.version,
            });
        }
        let source = patch.source.unwrap_or(InformationSource::Agent);
        let mut sources = before.field_sources.clone();
        let mut touched: Vec<&str> = Vec::new();
        let name = match &patch.name {
            Some(name) => {
                touched.push("name");
                required_text("name", name, 200)?
            }
            None => before.name.clone(),
        };
        let kind = patch
            .kind
            .inspect(|_| touched.push("kind"))
            .unwrap_or(before.kind);
        let organization = match &patch.organization_id {
            Some(Some(id)) => {
                touched.push("organization_id");
                if kind == CustomerKind::Organization {
                    return Err(DomainError::invalid(
                        "organization_id",
                        "an organisation cannot belong to another",
                    )
                    .into());
                }
                if id == &before.id {
                    return Err(DomainError::invalid(
                        "organization_id",
                        "a customer cannot belong to itself",
                    )
                    .into());
                }
                Some(check_organization(&mut conn, id).await?)
            }
            Some(None) => {
                touched.push("organization_id");
                None
            }
            None => match &before.organization_id {
                Some(id) => Some(customer_key(&mut conn, id, "organization_id").await?),
                None => None,
            },
        };
        if kind == CustomerKind::Organization && organization.is_some() {
            return Err(DomainError::invalid(
                "kind",
                "an organisation cannot belong to another: clear organization_id first",
            )
            .into());
        }
        if kind == CustomerKind::Person && before.kind == CustomerKind::Organization {
            let members: i64 = conn
                .scalar(
                    q("SELECT COUNT(*) AS value FROM customers WHERE organization_id = $1")
                        .bind(before.key),
                )
                .await?;
            if members > 0 {
                return Err(StoreError::conflict(
                    "customer_referenced",
                    Some("kind"),
                    format!("{members} people belong to this organisation; move them first"),
                ));
            }
        }
        let referrer = match &patch.referrer_id {
            Some(Some(id)) => {
                touched.push("referrer_id");
                Some(check_referrer(&mut conn, Some(before.key), id).await?)
            }
            Some(None) => {
                touched.push("referrer_id");
                None
            }
            None => match &before.referrer_id {
                Some(id) => Some(customer_key(&mut conn, id, "referrer_id").await?),
                None => None,
            },
        };
        let mut text_field = |field: &'static str,
                              value: &Option<String>,
                              current: &str,
                              max: usize|
         -> Result<String> {
            match value {
                Some(v) => {
                    touched.push(field);
                    Ok(optional_text(field, v, max)?)
                }
                None => Ok(current.to_string()),
            }
        };
        let language = text_field("language", &patch.language, &before.language, 35)?;
        let needs = text_field("needs", &patch.needs, &before.needs, 5000)?;
        let hobbies = text_field("hobbies", &patch.hobbies, &before.hobbies, 2000)?;
        let notes = text_field("notes", &patch.notes, &before.notes, 20000)?;
        let value_class = patch
            .value_class
            .inspect(|_| touched.push("value_class"))
            .unwrap_or(before.value_class);
        let position = patch
            .position
            .inspect(|_| touched.push("position"))
            .unwrap_or(before.position);
        let supply_chain_role = match patch.supply_chain_role {
            Some(v) => {
                touched.push("supply_chain_role");
                v
            }
            None => before.supply_chain_role,
        };
        let lead_source = match patch.lead_source {
            Some(v) => {
                touched.push("lead_source");
                v
            }
            None => before.lead_source,
        };
        let communication_type = match patch.communication_type {
            Some(v) => {
                touched.push("communication_type");
                v
            }
            None => before.communication_type,
        };
        let qualification = patch
            .qualification
            .inspect(|_| touched.push("qualification"))
            .unwrap_or(before.qualification);
        let mut custom = before.custom_fields.clone();
        if let Some(updates) = &patch.custom_fields {
            let definitions = custom_definitions(&mut conn).await?;
            for (field, kind) in merge_custom_fields(&definitions, &mut custom, updates)? {
                sources.insert(
                    field,
                    FieldSource {
                        kind,
                        source,
                        at: Timestamp(now),
                    },
                );
            }
        }
        note_sources(&mut sources, &touched, source, now);
        let changed = conn
            .execute(
                q("UPDATE customers SET name = $1, kind = $2, organization_id = $3, value_class = $4, position = $5, supply_chain_role = $6, lead_source = $7, referrer_id = $8, qualification_need = $9, qualification_ability_to_pay = $10, qualification_authority = $11, communication_type = $12, language = $13, needs = $14, hobbies = $15, notes = $16, custom_fields = $17, field_sources = $18, updated_at = $19, version = version + 1 WHERE id = $20 AND version = $21")
                    .bind(name)
                    .bind(kind.as_str())
                    .bind(organization)
                    .bind(value_class.as_str())
                    .bind(position.as_str())
                    .bind(supply_chain_role.map(|v| v.as_str()))
                    .bind(lead_source.map(|v| v.as_str()))
                    .bind(referrer)
                    .bind(qualification.need)
                    .bind(qualification.ability_to_pay)
                    .bind(qualification.authority)
                    .bind(communication_type.map(|v| v.as_str()))
                    .bind(language)
                    .bind(needs)
                    .bind(hobbies)
                    .bind(notes)
                    .bind(Value::Object(custom).to_string())
                    .bind(serde_json::to_string(&sources).unwrap_or_else(|_| "{}".into()))
                    .bind(now)
                    .bind(before.key)
                    .bind(before.version),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::VersionMismatch {
                entity: "customer",
                expected: before.version,
                current: before.version + 1,
            });
        }
        refresh_search_text(&mut conn, before.key).await?;
        let after = load_customer(&mut conn, public_id).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "customer",
            public_id,
            Some(&to_json(&before)),
            Some(&to_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Moves a customer along the lifecycle, recording who, when and why. Moving to
    /// `lost` needs a reason and opens the lost card.
    pub async fn transition_customer(
        &self,
        actor: &Actor,
        public_id: &str,
        to: LifecycleState,
        reason: &str,
        expected_version: Option<i64>,
    ) -> Result<Customer> {
        let now = self.now_ms();
        let reason = optional_text("reason", reason, 2000)?;
        let mut conn = self.write().await?;
        let before = lock_customer(&mut conn, public_id).await?;
        if let Some(expected) = expected_version.filter(|expected| *expected != before.version) {
            return Err(StoreError::VersionMismatch {
                entity: "customer",
                expected,
                current: before.version,
            });
        }
        before.lifecycle.transition(to)?;
        if to == LifecycleState::Lost && reason.is_empty() {
            return Err(DomainError::invalid(
                "reason",
                "say why the customer was lost; the lost card records it",
            )
            .into());
        }
        let (lost_at, lost_reason) = if to == LifecycleState::Lost {
            (Some(now), Some(reason.clone()))
        } else {
            (before.lost_at.map(|t| t.0), before.lost_reason.clone())
        };
        let mut sources = before.field_sources.clone();
        note_sources(&mut sources, &["lifecycle"], InformationSource::Agent, now);
        conn.execute(
            q("UPDATE customers SET lifecycle = $1, lifecycle_changed_at = $2, lost_at = $3, lost_reason = $4, field_sources = $5, updated_at = $2, version = version + 1 WHERE id = $6")
                .bind(to.as_str())
                .bind(now)
                .bind(lost_at)
                .bind(lost_reason)
                .bind(serde_json::to_string(&sources).unwrap_or_else(|_| "{}".into()))
                .bind(before.key),
        )
        .await?;
        conn.execute(
            q("INSERT INTO lifecycle_transitions (customer_id, from_state, to_state, reason, actor_id, actor_label, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(before.key)
                .bind(before.lifecycle.as_str())
                .bind(to.as_str())
                .bind(reason.as_str())
                .bind(actor.user_id)
                .bind(actor.label.as_str())
                .bind(now),
        )
        .await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer: before.key,
                case: None,
                kind: TimelineKind::Lifecycle,
                channel: Channel::System,
                direction: Direction::CompanyInitiated,
                content_type: ContentType::Information,
                summary: format!(
                    "{} → {}: {}",
                    before.lifecycle.label_zh(),
                    to.label_zh(),
                    reason
                ),
                data: json!({"from": before.lifecycle, "to": to, "reason": reason}),
                actor: actor.user_id,
                occurred_at: now,
            },
            now,
        )
        .await?;
        let after = load_customer(&mut conn, public_id).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "transition",
            "customer",
            public_id,
            Some(&to_json(&before)),
            Some(&to_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Adds a contact to a customer.
    pub async fn add_contact(
        &self,
        actor: &Actor,
        public_id: &str,
        contact: NewContact,
    ) -> Result<Customer> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let before = lock_customer(&mut conn, public_id).await?;
        insert_contacts(
            &mut conn,
            before.key,
            std::slice::from_ref(&contact),
            InformationSource::Agent,
            now,
        )
        .await?;
        if contact.is_primary {
            let normalised = NormalisedContact::parse(contact.channel, &contact.value)?;
            conn.execute(q("UPDATE customer_contacts SET is_primary = (value = $1) WHERE customer_id = $2 AND channel = $3").bind(normalised.value).bind(before.key).bind(contact.channel.as_str())).await?;
        }
        refresh_search_text(&mut conn, before.key).await?;
        conn.execute(
            q("UPDATE customers SET updated_at = $1, version = version + 1 WHERE id = $2")
                .bind(now)
                .bind(before.key),
        )
        .await?;
        let after = load_customer(&mut conn, public_id).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "customer",
            public_id,
            Some(&to_json(&before)),
            Some(&to_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Removes a contact from a customer.
    pub async fn remove_contact(
        &self,
        actor: &Actor,
        public_id: &str,
        contact_id: &str,
    ) -> Result<Customer> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let before = lock_customer(&mut conn, public_id).await?;
        let removed = conn
            .execute(
                q("DELETE FROM customer_contacts WHERE customer_id = $1 AND public_id = $2")
                    .bind(before.key)
                    .bind(contact_id),
            )
            .await?;
        if removed == 0 {
            return Err(StoreError::not_found("contact", contact_id));
        }
        refresh_search_text(&mut conn, before.key).await?;
        conn.execute(
            q("UPDATE customers SET updated_at = $1, version = version + 1 WHERE id = $2")
                .bind(now)
                .bind(before.key),
        )
        .await?;
        let after = load_customer(&mut conn, public_id).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "customer",
            public_id,
            Some(&to_json(&before)),
            Some(&to_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Deletes a customer who has no cases; one with cases keeps its history.
    pub async fn delete_customer(&self, actor: &Actor, public_id: &str) -> Result<()> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let before = lock_customer(&mut conn, public_id).await?;
        let cases: i64 = conn
            .scalar(
                q("SELECT COUNT(*) AS value FROM cases WHERE customer_id = $1").bind(before.key),
            )
            .await?;
        if cases > 0 {
            return Err(StoreError::conflict(
                "customer_has_cases",
                None,
                format!(
                    "the customer has {cases} cases; their history is kept, so the customer cannot be deleted"
                ),
            ));
        }
        let dependants: i64 = conn
            .scalar(q("SELECT COUNT(*) AS value FROM customers WHERE organization_id = $1 OR referrer_id = $1").bind(before.key))
            .await?;
        if dependants > 0 {
            return Err(StoreError::conflict(
                "customer_referenced",
                None,
                format!("{dependants} other customers belong to or were referred by this customer"),
            ));
        }
        for table in [
            "customer_contacts",
            "lifecycle_transitions",
            "customer_transactions",
            "win_back_attempts",
            "timeline_entries",
        ] {
            conn.execute(
                crate::sql::q_dynamic(format!("DELETE FROM {table} WHERE customer_id = $1"))
                    .bind(before.key),
            )
            .await?;
        }
        conn.execute(q("DELETE FROM customers WHERE id = $1").bind(before.key))
            .await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "delete",
            "customer",
            public_id,
            Some(&to_json(&before)),
            None,
        )
        .await?;
        conn.commit().await?;
        Ok(())
    }

    /// Records a purchase on the customer's current card, and on the timeline.
    pub async fn add_transaction(
        &self,
        actor: &Actor,
        public_id: &str,
        input: NewTransaction,
    ) -> Result<CustomerTransaction> {
        let now = self.now_ms();
        let method = required_text("method", &input.method, 100)?;
        // A trillion in the currency's main unit is beyond any single purchase.
        const LIMIT_CENTS: i64 = 100_000_000_000_000;
        if !(-LIMIT_CENTS..=LIMIT_CENTS).contains(&input.amount_cents) {
            return Err(DomainError::invalid(
                "amount_cents",
                format!("must be between -{LIMIT_CENTS} and {LIMIT_CENTS}"),
            )
            .into());
        }
        let currency = optional_text("currency", input.currency.as_deref().unwrap_or("CNY"), 3)?
            .to_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(DomainError::invalid(
                "currency",
                "must be a three-letter ISO 4217 code such as CNY",
            )
            .into());
        }
        let description = optional_text(
            "description",
            input.description.as_deref().unwrap_or(""),
            2000,
        )?;
        let occurred_at = input.occurred_at.map_or(now, |t| t.0);
        let mut conn = self.write().await?;
        let customer = lock_customer(&mut conn, public_id).await?;
        let id = new_public_id();
        conn.execute(
            q("INSERT INTO customer_transactions (public_id, customer_id, occurred_at, method, amount_cents, currency, description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(id.as_str())
                .bind(customer.key)
                .bind(occurred_at)
                .bind(method.as_str())
                .bind(input.amount_cents)
                .bind(currency.as_str())
                .bind(description.as_str())
                .bind(now),
        )
        .await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer: customer.key,
                case: None,
                kind: TimelineKind::Transaction,
                channel: Channel::System,
                direction: Direction::CustomerInitiated,
                content_type: ContentType::Information,
                summary: format!("{} {:.2} {} ({method})", currency, input.amount_cents as f64 / 100.0, description),
                data: json!({"transaction_id": id, "amount_cents": input.amount_cents, "currency": currency, "method": method}),
                actor: actor.user_id,
                occurred_at,
            },
            now,
        )
        .await?;
        let transaction = CustomerTransaction {
            id: id.clone(),
            occurred_at: Timestamp(occurred_at),
            method,
            amount_cents: input.amount_cents,
            currency,
            description,
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "customer_transaction",
            &id,
            None,
            serde_json::to_value(&transaction).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(transaction)
    }

    /// Records an attempt to win back a lost customer.
    pub async fn add_win_back_attempt(
        &self,
        actor: &Actor,
        public_id: &str,
        input: NewWinBackAttempt,
    ) -> Result<WinBackAttempt> {
        let now = self.now_ms();
        let outcome = required_text("outcome", &input.outcome, 100)?;
        let note = optional_text("note", input.note.as_deref().unwrap_or(""), 5000)?;
        let occurred_at = input.occurred_at.map_or(now, |t| t.0);
        let mut conn = self.write().await?;
        let customer = lock_customer(&mut conn, public_id).await?;
        if customer.lifecycle != LifecycleState::Lost {
            return Err(StoreError::conflict(
                "not_lost",
                Some("lifecycle"),
                format!(
                    "win-back attempts go on the lost card; this customer is `{}`",
                    customer.lifecycle
                ),
            ));
        }
        let id = new_public_id();
        conn.execute(
            q("INSERT INTO win_back_attempts (public_id, customer_id, occurred_at, channel, outcome, note, actor_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(id.as_str())
                .bind(customer.key)
                .bind(occurred_at)
                .bind(input.channel.as_str())
                .bind(outcome.as_str())
                .bind(note.as_str())
                .bind(actor.user_id)
                .bind(now),
        )
        .await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer: customer.key,
                case: None,
                kind: TimelineKind::FollowUp,
                channel: input.channel,
                direction: Direction::CompanyInitiated,
                content_type: ContentType::Emotion,
                summary: format!("{outcome}: {note}"),
                data: json!({"attempt_id": id, "outcome": outcome}),
                actor: actor.user_id,
                occurred_at,
            },
            now,
        )
        .await?;
        let attempt = WinBackAttempt {
            id: id.clone(),
            occurred_at: Timestamp(occurred_at),
            channel: input.channel,
            outcome,
            note,
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "win_back_attempt",
            &id,
            None,
            serde_json::to_value(&attempt).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(attempt)
    }

    pub async fn custom_fields(&self) -> Result<Vec<CustomFieldDefinition>> {
        custom_definitions(&mut self.read()).await
    }

    /// Defines a custom field.
    pub async fn define_custom_field(
        &self,
        actor: &Actor,
        definition: CustomFieldDefinition,
    ) -> Result<CustomFieldDefinition> {
        let now = self.now_ms();
        let key = custom_field_key(&definition.key)?;
        let label_en = required_text("label_en", &definition.label_en, 100)?;
        let label_zh = required_text("label_zh", &definition.label_zh, 100)?;
        if definition.field_type == CustomFieldType::Select && definition.options.is_empty() {
            return Err(DomainError::invalid(
                "options",
                "a choice field needs at least one option",
            )
            .into());
        }
        let definition = CustomFieldDefinition {
            key,
            label_en,
            label_zh,
            ..definition
        };
        let mut conn = self.write().await?;
        let exists = conn
            .fetch_optional(
                q("SELECT id FROM custom_field_definitions WHERE key = $1")
                    .bind(definition.key.as_str()),
            )
            .await?;
        if exists.is_some() {
            return Err(StoreError::conflict(
                "duplicate",
                Some("key"),
                format!("custom field `{}` already exists", definition.key),
            ));
        }
        conn.execute(
            q("INSERT INTO custom_field_definitions (key, label_en, label_zh, field_type, options, information_kind, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(definition.key.as_str())
                .bind(definition.label_en.as_str())
                .bind(definition.label_zh.as_str())
                .bind(definition.field_type.as_str())
                .bind(serde_json::to_string(&definition.options).unwrap_or_else(|_| "[]".into()))
                .bind(definition.information_kind.as_str())
                .bind(now),
        )
        .await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "custom_field",
            &definition.key,
            None,
            serde_json::to_value(&definition).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(definition)
    }

    /// The lifecycle history of a customer, newest first.
    pub async fn lifecycle_history(&self, public_id: &str) -> Result<Vec<LifecycleTransition>> {
        Ok(self.customer_detail(public_id).await?.lifecycle_history)
    }

    /// The number of customers (for health and benchmarks).
    pub async fn customer_count(&self) -> Result<i64> {
        self.read()
            .scalar(q("SELECT COUNT(*) AS value FROM customers"))
            .await
    }
}
