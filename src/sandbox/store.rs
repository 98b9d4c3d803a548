//! The HubSpot sandbox's records: four object types with HubSpot's property names, generated
//! deterministically, kept in memory (about 300 bytes a record) and optionally written through to
//! a SQLite file so that a restarted server keeps its state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::digest::ObjectDigester;
use crate::generate::Rng;
use crate::record::{Fields, Record};

/// How a property's values compare in search filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    DateTime,
    Enumeration,
}

/// One property of an object type.
#[derive(Clone, Debug)]
pub struct Property {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// Maintained by the server (`createdate`, the modified date, `hs_object_id`): read-only.
    pub system: bool,
}

const fn prop(name: &'static str, label: &'static str, kind: Kind) -> Property {
    Property {
        name,
        label,
        kind,
        system: false,
    }
}

const fn system(name: &'static str, label: &'static str, kind: Kind) -> Property {
    Property {
        name,
        label,
        kind,
        system: true,
    }
}

/// One object type: its names, properties and which of them lists return by default.
pub struct ObjectType {
    pub name: &'static str,
    pub type_id: &'static str,
    /// The property that holds the last-modified time (`lastmodifieddate` for contacts).
    pub modified: &'static str,
    pub defaults: &'static [&'static str],
    pub properties: Vec<Property>,
}

pub fn object_types() -> Vec<ObjectType> {
    use Kind::*;
    let systems = |modified: &'static str| {
        vec![
            system("createdate", "Create Date", DateTime),
            system(modified, "Last Modified Date", DateTime),
            system("hs_object_id", "Record ID", Number),
        ]
    };
    let with = |mut own: Vec<Property>, modified: &'static str| {
        own.extend(systems(modified));
        own
    };
    vec![
        ObjectType {
            name: "contacts",
            type_id: "0-1",
            modified: "lastmodifieddate",
            defaults: &["firstname", "lastname", "email"],
            properties: with(
                vec![
                    prop("email", "Email", Text),
                    prop("firstname", "First Name", Text),
                    prop("lastname", "Last Name", Text),
                    prop("phone", "Phone Number", Text),
                    prop("company", "Company Name", Text),
                    prop("lifecyclestage", "Lifecycle Stage", Enumeration),
                    prop("hubspot_owner_id", "Contact owner", Enumeration),
                    prop("notes", "Notes", Text),
                ],
                "lastmodifieddate",
            ),
        },
        ObjectType {
            name: "companies",
            type_id: "0-2",
            modified: "hs_lastmodifieddate",
            defaults: &["name", "domain"],
            properties: with(
                vec![
                    prop("name", "Name", Text),
                    prop("domain", "Company Domain Name", Text),
                    prop("industry", "Industry", Enumeration),
                    prop("country", "Country/Region", Text),
                    prop("numberofemployees", "Number of Employees", Number),
                    prop("annualrevenue", "Annual Revenue", Number),
                ],
                "hs_lastmodifieddate",
            ),
        },
        ObjectType {
            name: "deals",
            type_id: "0-3",
            modified: "hs_lastmodifieddate",
            defaults: &["dealname", "amount", "closedate", "pipeline", "dealstage"],
            properties: with(
                vec![
                    prop("dealname", "Deal Name", Text),
                    prop("amount", "Amount", Number),
                    prop("dealstage", "Deal Stage", Enumeration),
                    prop("pipeline", "Pipeline", Enumeration),
                    prop("closedate", "Close Date", DateTime),
                    prop("deal_currency_code", "Currency", Enumeration),
                ],
                "hs_lastmodifieddate",
            ),
        },
        ObjectType {
            name: "tickets",
            type_id: "0-5",
            modified: "hs_lastmodifieddate",
            defaults: &[
                "content",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
            ],
            properties: with(
                vec![
                    prop("subject", "Ticket name", Text),
                    prop("content", "Ticket description", Text),
                    prop("hs_pipeline", "Pipeline", Enumeration),
                    prop("hs_pipeline_stage", "Ticket status", Enumeration),
                    prop("hs_ticket_category", "Category", Enumeration),
                    prop("hs_ticket_priority", "Priority", Enumeration),
                ],
                "hs_lastmodifieddate",
            ),
        },
    ]
}

/// One record: its own property values (system properties are derived), times in epoch ms.
#[derive(Clone, Debug)]
pub struct Rec {
    pub values: Vec<Option<Box<str>>>,
    pub created: i64,
    pub updated: i64,
    pub archived: Option<i64>,
}

/// The records of one object type.
pub struct Table {
    pub kind: ObjectType,
    index: HashMap<&'static str, usize>,
    pub records: BTreeMap<u64, Rec>,
    pub next_id: u64,
}

/// Formats epoch milliseconds the way HubSpot does: ISO 8601 UTC with milliseconds.
pub fn iso_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Epoch milliseconds from a filter value: digits, or an ISO 8601 / RFC 3339 time or date.
pub fn parse_ms(text: &str) -> Option<i64> {
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Some(ms);
    }
    if let Some(t) = crate::record::parse_time(text) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis())
}

impl Table {
    pub fn new(kind: ObjectType) -> Table {
        let index = kind.properties.iter().enumerate().map(|(i, p)| (p.name, i)).collect();
        Table {
            kind,
            index,
            records: BTreeMap::new(),
            next_id: 1,
        }
    }

    pub fn property(&self, name: &str) -> Option<&Property> {
        self.index.get(name).map(|&i| &self.kind.properties[i])
    }

    /// The value of property `name` of record `id`, system properties included.
    pub fn value(&self, id: u64, rec: &Rec, name: &str) -> Option<String> {
        match name {
            "hs_object_id" => Some(id.to_string()),
            "createdate" => Some(iso_ms(rec.created)),
            n if n == self.kind.modified => Some(iso_ms(rec.updated)),
            n => self.index.get(n).and_then(|&i| rec.values[i].as_deref()).map(str::to_string),
        }
    }

    /// The time in epoch milliseconds of a date property of record `id` (kept times directly).
    pub fn millis(&self, id: u64, rec: &Rec, name: &str) -> Option<i64> {
        match name {
            "createdate" => Some(rec.created),
            n if n == self.kind.modified => Some(rec.updated),
            n => parse_ms(&self.value(id, rec, n)?),
        }
    }

    /// Every property with a value, as strings.
    pub fn all_values(&self, id: u64, rec: &Rec) -> BTreeMap<String, String> {
        self.kind
            .properties
            .iter()
            .filter_map(|p| self.value(id, rec, p.name).map(|v| (p.name.to_string(), v)))
            .collect()
    }

    /// Sets writable properties from a JSON object of values; unknown or read-only names are
    /// refused with their names.
    pub fn set(&self, rec: &mut Rec, properties: &serde_json::Map<String, Value>) -> Result<(), Vec<String>> {
        let mut bad = Vec::new();
        for (name, value) in properties {
            match self.index.get(name.as_str()) {
                Some(&i) if !self.kind.properties[i].system => {
                    rec.values[i] = match value {
                        Value::Null => None,
                        Value::String(s) if s.is_empty() => None,
                        Value::String(s) => Some(s.as_str().into()),
                        other => Some(other.to_string().into()),
                    };
                }
                _ => bad.push(name.clone()),
            }
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    /// Stores a new record under the next id; returns the id.
    pub fn add(&mut self, rec: Rec) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.records.insert(id, rec);
        id
    }

    pub fn blank(&self, now: i64) -> Rec {
        Rec {
            values: vec![None; self.kind.properties.len()],
            created: now,
            updated: now,
            archived: None,
        }
    }

    /// The canonical record of a live record, as the store hashes it: every property with a
    /// value, as strings; the id is HubSpot's id.
    pub fn canonical(&self, id: u64, rec: &Rec) -> Record {
        let object: Arc<str> = self.kind.name.into();
        let fields: Fields = self.all_values(id, rec).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        Record {
            object,
            id: id.to_string(),
            fields,
            modified_at: Utc.timestamp_millis_opt(rec.updated).single(),
            deleted: false,
        }
    }

    /// Live and archived counts and the digest of the live records.
    pub fn summary(&self) -> Value {
        let mut digester = ObjectDigester::with_capacity(self.records.len(), 8);
        let mut archived = 0;
        for (id, rec) in &self.records {
            if rec.archived.is_some() {
                archived += 1;
            } else {
                digester.push(&id.to_string(), self.canonical(*id, rec).hash());
            }
        }
        let digest = digester.finish();
        json!({"count": digest.count, "archived": archived, "digest": digest.digest})
    }
}

/// Generated records are created and modified in the two years before this time
/// (2026-01-01T00:00:00Z), so the same seed gives the same records on any day.
pub const SEED_EPOCH_MS: i64 = 1_767_225_600_000;

/// Deterministic, realistic records: `contacts` contacts, a tenth as many companies and tickets,
/// a fifth as many deals, created over the two years before `now`.
pub fn seed(tables: &mut [Table], contacts: u64, now: i64) {
    use crate::generate::{COMPANY_A, COMPANY_B, COUNTRY, DEAL_STAGES, FIRST, INDUSTRY, LAST, NOTE_WORDS, OWNERS, STAGES};
    let mut rng = Rng::new(contacts);
    let two_years = 2 * 365 * 86_400_000i64;
    for table in tables.iter_mut() {
        let count = match table.kind.name {
            "contacts" => contacts,
            "deals" => contacts / 5,
            _ => contacts / 10,
        }
        .max(u64::from(contacts > 0));
        for n in 0..count {
            let created = now - two_years + rng.below(two_years as u64) as i64;
            let updated = created + rng.below((now - created).max(1) as u64) as i64;
            let mut rec = table.blank(created);
            rec.updated = updated;
            let mut values: Vec<(&str, String)> = Vec::new();
            match table.kind.name {
                "contacts" => {
                    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
                    values.push((
                        "email",
                        format!("{}.{}{n}@example.com", first.to_lowercase(), last.to_lowercase().replace(' ', "")),
                    ));
                    values.push(("firstname", first.into()));
                    values.push(("lastname", last.into()));
                    if rng.chance(80) {
                        values.push((
                            "phone",
                            format!("+{} {:03} {:07}", 1 + rng.below(98), rng.below(1000), rng.below(10_000_000)),
                        ));
                    }
                    values.push(("company", format!("{} {}", rng.pick(COMPANY_A), rng.pick(COMPANY_B))));
                    values.push(("lifecyclestage", rng.pick(STAGES).into()));
                    values.push(("hubspot_owner_id", rng.pick(OWNERS).into()));
                    if rng.chance(40) {
                        let words: Vec<&str> = (0..4 + rng.below(12)).map(|_| rng.pick(NOTE_WORDS)).collect();
                        values.push(("notes", words.join(" ")));
                    }
                }
                "companies" => {
                    let name = format!("{} {}", rng.pick(COMPANY_A), rng.pick(COMPANY_B));
                    values.push(("domain", format!("{}{n}.example.com", name.to_lowercase().replace([' ', '.'], ""))));
                    values.push(("name", name));
                    values.push(("industry", rng.pick(INDUSTRY).into()));
                    values.push(("country", rng.pick(COUNTRY).into()));
                    values.push(("numberofemployees", (1 + rng.below(5000)).to_string()));
                    values.push(("annualrevenue", format!("{}.{:02}", rng.below(50_000_000), rng.below(100))));
                }
                "deals" => {
                    values.push(("dealname", format!("{} renewal {n}", rng.pick(COMPANY_A))));
                    values.push(("amount", format!("{}.{:02}", rng.below(200_000), rng.below(100))));
                    values.push(("dealstage", rng.pick(DEAL_STAGES).into()));
                    values.push(("pipeline", "default".into()));
                    values.push(("closedate", iso_ms(updated + rng.below(90 * 86_400_000) as i64)));
                    values.push(("deal_currency_code", rng.pick(&["EUR", "USD", "JPY", "NOK"]).into()));
                }
                _ => {
                    values.push(("subject", format!("{} {}", rng.pick(NOTE_WORDS), rng.pick(NOTE_WORDS))));
                    let words: Vec<&str> = (0..6 + rng.below(10)).map(|_| rng.pick(NOTE_WORDS)).collect();
                    values.push(("content", words.join(" ")));
                    values.push(("hs_pipeline", "0".into()));
                    values.push(("hs_pipeline_stage", (1 + rng.below(4)).to_string()));
                    values.push((
                        "hs_ticket_category",
                        rng.pick(&["PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"])
                            .into(),
                    ));
                    values.push(("hs_ticket_priority", rng.pick(&["LOW", "MEDIUM", "HIGH"]).into()));
                }
            }
            for (name, value) in values {
                if let Some(&i) = table.index.get(name) {
                    rec.values[i] = Some(value.into());
                }
            }
            table.add(rec);
        }
    }
}

/// Write-through persistence of records in a SQLite file.
pub struct Persist {
    pool: SqlitePool,
}

impl Persist {
    pub async fn open(path: &std::path::Path) -> Result<Persist, sqlx::Error> {
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS records (object TEXT NOT NULL, id INTEGER NOT NULL, created INTEGER NOT NULL, \
             updated INTEGER NOT NULL, archived INTEGER, props TEXT NOT NULL, PRIMARY KEY (object, id))",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS associations (from_type TEXT NOT NULL, to_type TEXT NOT NULL, from_id INTEGER NOT NULL, \
             to_id INTEGER NOT NULL, PRIMARY KEY (from_type, to_type, from_id, to_id))",
        )
        .execute(&pool)
        .await?;
        Ok(Persist { pool })
    }

    /// Loads the saved records into `tables`; false when the file holds none.
    pub async fn load(&self, tables: &mut [Table]) -> Result<bool, sqlx::Error> {
        let rows: Vec<(String, i64, i64, i64, Option<i64>, String)> =
            sqlx::query_as("SELECT object, id, created, updated, archived, props FROM records ORDER BY object, id")
                .fetch_all(&self.pool)
                .await?;
        if rows.is_empty() {
            return Ok(false);
        }
        for (object, id, created, updated, archived, props) in rows {
            let Some(table) = tables.iter_mut().find(|t| t.kind.name == object) else {
                continue;
            };
            let mut rec = table.blank(created);
            rec.updated = updated;
            rec.archived = archived;
            let props: BTreeMap<String, String> = serde_json::from_str(&props).unwrap_or_default();
            for (k, v) in props {
                if let Some(&i) = table.index.get(k.as_str()) {
                    rec.values[i] = Some(v.into());
                }
            }
            table.next_id = table.next_id.max(id as u64 + 1);
            table.records.insert(id as u64, rec);
        }
        Ok(true)
    }

    /// The saved associations.
    pub async fn load_associations(&self) -> Result<super::associations::Associations, sqlx::Error> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as("SELECT from_type, to_type, from_id, to_id FROM associations")
            .fetch_all(&self.pool)
            .await?;
        let mut out = super::associations::Associations::default();
        for (from, to, a, b) in rows {
            out.add(&from, a as u64, &to, b as u64);
        }
        Ok(out)
    }

    /// Saves added and removed associations in one transaction.
    pub async fn save_associations(
        &self,
        add: Vec<(&'static str, &'static str, u64, u64)>,
        remove: Vec<(&'static str, &'static str, u64, u64)>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (from, to, a, b) in add {
            sqlx::query("INSERT OR IGNORE INTO associations VALUES (?, ?, ?, ?)")
                .bind(from)
                .bind(to)
                .bind(a as i64)
                .bind(b as i64)
                .execute(&mut *tx)
                .await?;
        }
        for (from, to, a, b) in remove {
            sqlx::query("DELETE FROM associations WHERE (from_type, to_type, from_id, to_id) IN (VALUES (?, ?, ?, ?), (?, ?, ?, ?))")
                .bind(from)
                .bind(to)
                .bind(a as i64)
                .bind(b as i64)
                .bind(to)
                .bind(from)
                .bind(b as i64)
                .bind(a as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Writes rows made by [`rows`] in one transaction.
    pub async fn write(&self, rows: Vec<Row>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (object, id, created, updated, archived, props) in rows {
            sqlx::query("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)")
                .bind(object)
                .bind(id)
                .bind(created)
                .bind(updated)
                .bind(archived)
                .bind(props)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}

/// One saved record: object, id, created, updated, archived, properties as JSON.
pub type Row = (&'static str, i64, i64, i64, Option<i64>, String);

/// The saved form of these records of `table`.
pub fn rows(table: &Table, ids: &[u64]) -> Vec<Row> {
    ids.iter()
        .filter_map(|id| {
            let rec = table.records.get(id)?;
            let props: BTreeMap<&str, &str> = table
                .kind
                .properties
                .iter()
                .zip(&rec.values)
                .filter_map(|(p, v)| v.as_deref().map(|v| (p.name, v)))
                .collect();
            Some((
                table.kind.name,
                *id as i64,
                rec.created,
                rec.updated,
                rec.archived,
                serde_json::to_string(&props).expect("serialisable"),
            ))
        })
        .collect()
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A time for a change made "after" `cutover`: now, or just after the cutover if that is later.
pub fn after(cutover: Option<DateTime<Utc>>) -> i64 {
    let now = now_ms();
    cutover.map_or(now, |c| now.max(c.timestamp_millis() + 1))
}
