//! The sandbox's records, for every flavor: object types with the vendor's field names (here
//! HubSpot's four; Salesforce's in `salesforce/objects.rs`), generated deterministically, kept in
//! memory (about 300 bytes a record) and optionally written through to a SQLite file so that a
//! restarted server keeps its state. The fields the server keeps (id, created, modified, deleted)
//! are derived from each record's times, named and formatted in the flavor's [`Style`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

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
    Boolean,
}

/// Whose conventions the server-kept fields follow: their names, id and time formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `hs_object_id` (decimal), `createdate`, a modified date; ISO 8601 with `Z`.
    HubSpot,
    /// `Id` (18 characters with the type's key prefix), `CreatedDate`, `LastModifiedDate` and
    /// `SystemModstamp`, `IsDeleted`; times as `2024-03-01T10:00:00.000+0000`; names match
    /// case-insensitively.
    Salesforce,
}

/// What a property holds: a record's own value, or one the server derives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Own,
    Id,
    Created,
    Modified,
    Deleted,
}

/// One property of an object type.
#[derive(Clone, Debug)]
pub struct Property {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// Maintained by the server (`createdate`, the modified date, `hs_object_id`; Salesforce's
    /// `Id`, `CreatedDate`, ...) or otherwise read-only.
    pub system: bool,
}

pub const fn prop(name: &'static str, label: &'static str, kind: Kind) -> Property {
    Property {
        name,
        label,
        kind,
        system: false,
    }
}

pub const fn system(name: &'static str, label: &'static str, kind: Kind) -> Property {
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
    /// HubSpot's object type id (`0-1`), or Salesforce's key prefix (`003`).
    pub type_id: &'static str,
    /// The property that holds the last-modified time (`lastmodifieddate` for contacts).
    pub modified: &'static str,
    pub defaults: &'static [&'static str],
    pub properties: Vec<Property>,
    pub style: Style,
    /// Whether records can be created and deleted through the API (Salesforce's `UserLogin` and,
    /// in the sandbox, `User` cannot).
    pub createable: bool,
    /// Fields a new record must have.
    pub required: &'static [&'static str],
}

impl ObjectType {
    /// An id as the API shows it.
    pub fn show_id(&self, id: u64) -> String {
        match self.style {
            Style::HubSpot => id.to_string(),
            Style::Salesforce => super::salesforce::ids::show(self.type_id, id),
        }
    }

    /// The record number an API id names, if it names one of this type.
    pub fn parse_id(&self, text: &str) -> Option<u64> {
        match self.style {
            Style::HubSpot => text.parse().ok(),
            Style::Salesforce => super::salesforce::ids::parse(self.type_id, text),
        }
    }

    /// A time as the API shows it.
    pub fn time(&self, ms: i64) -> String {
        match self.style {
            Style::HubSpot => iso_ms(ms),
            Style::Salesforce => Utc
                .timestamp_millis_opt(ms)
                .single()
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string(),
        }
    }

    fn slot(&self, name: &str) -> Slot {
        match (self.style, name) {
            (Style::HubSpot, "hs_object_id") | (Style::Salesforce, "Id") => Slot::Id,
            (Style::HubSpot, "createdate") | (Style::Salesforce, "CreatedDate") => Slot::Created,
            (Style::Salesforce, "LastModifiedDate" | "SystemModstamp") => Slot::Modified,
            (Style::HubSpot, n) if n == self.modified => Slot::Modified,
            (Style::Salesforce, "IsDeleted") => Slot::Deleted,
            _ => Slot::Own,
        }
    }
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
            style: Style::HubSpot,
            createable: true,
            required: &[],
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
            style: Style::HubSpot,
            createable: true,
            required: &[],
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
            style: Style::HubSpot,
            createable: true,
            required: &[],
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
            style: Style::HubSpot,
            createable: true,
            required: &[],
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
    slots: Vec<Slot>,
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
        let slots = kind.properties.iter().map(|p| kind.slot(p.name)).collect();
        Table {
            kind,
            index,
            slots,
            records: BTreeMap::new(),
            next_id: 1,
        }
    }

    pub fn property(&self, name: &str) -> Option<&Property> {
        self.column(name).map(|i| &self.kind.properties[i])
    }

    /// The position of property `name` (any case, for Salesforce).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied().or_else(|| {
            (self.kind.style == Style::Salesforce)
                .then(|| self.kind.properties.iter().position(|p| p.name.eq_ignore_ascii_case(name)))
                .flatten()
        })
    }

    /// The value of the property at `column` of record `id`, server-kept ones included.
    pub fn get(&self, id: u64, rec: &Rec, column: usize) -> Option<String> {
        match self.slots[column] {
            Slot::Own => rec.values[column].as_deref().map(str::to_string),
            Slot::Id => Some(self.kind.show_id(id)),
            Slot::Created => Some(self.kind.time(rec.created)),
            Slot::Modified => Some(self.kind.time(rec.updated)),
            Slot::Deleted => Some(rec.archived.is_some().to_string()),
        }
    }

    /// The time in epoch milliseconds of the date property at `column` (kept times directly).
    pub fn get_ms(&self, id: u64, rec: &Rec, column: usize) -> Option<i64> {
        match self.slots[column] {
            Slot::Created => Some(rec.created),
            Slot::Modified => Some(rec.updated),
            _ => parse_ms(&self.get(id, rec, column)?),
        }
    }

    /// The value of property `name` of record `id`, system properties included.
    pub fn value(&self, id: u64, rec: &Rec, name: &str) -> Option<String> {
        self.get(id, rec, self.column(name)?)
    }

    /// The time in epoch milliseconds of a date property of record `id` (kept times directly).
    pub fn millis(&self, id: u64, rec: &Rec, name: &str) -> Option<i64> {
        self.get_ms(id, rec, self.column(name)?)
    }

    /// Sets one own value by field name (seeding); unknown names are ignored.
    pub fn put(&self, rec: &mut Rec, name: &str, value: String) {
        if let Some(&i) = self.index.get(name) {
            rec.values[i] = Some(value.into());
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
            match self.column(name) {
                Some(i) if !self.kind.properties[i].system => {
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
            id: self.kind.show_id(id),
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
                digester.push(&self.kind.show_id(*id), self.canonical(*id, rec).hash());
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
                table.put(&mut rec, name, value);
            }
            table.add(rec);
        }
    }
}

/// A flavor's tables, and the file they are written through to.
pub struct Records {
    pub tables: RwLock<Vec<Table>>,
    pub persist: Option<Persist>,
}

impl Records {
    /// Loads the tables from `data` when it holds records, or seeds them (and saves them there);
    /// also says whether they were loaded.
    pub async fn open(
        data: Option<&std::path::Path>,
        types: Vec<ObjectType>,
        seed: impl FnOnce(&mut [Table]),
    ) -> anyhow::Result<(Records, bool)> {
        let mut tables: Vec<Table> = types.into_iter().map(Table::new).collect();
        let persist = match data {
            Some(path) => Some(
                Persist::open(path)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot open the sandbox data file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let loaded = match &persist {
            Some(p) => p.load(&mut tables).await?,
            None => false,
        };
        if !loaded {
            seed(&mut tables);
            if let Some(p) = &persist {
                for table in &tables {
                    let ids: Vec<u64> = table.records.keys().copied().collect();
                    p.write(rows(table, &ids)).await?;
                }
            }
        }
        let records = Records {
            tables: RwLock::new(tables),
            persist,
        };
        Ok((records, loaded))
    }

    /// Writes these records of table `object` through to the file, if there is one.
    pub async fn save(&self, object: usize, ids: &[u64]) {
        let Some(persist) = &self.persist else { return };
        let rows = {
            let tables = self.tables.read().expect("tables lock");
            rows(&tables[object], ids)
        };
        if let Err(e) = persist.write(rows).await {
            tracing::error!("sandbox: cannot save records: {e}");
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
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, role TEXT, super_admin INTEGER NOT NULL)",
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

    /// The saved account users by id.
    pub async fn load_users(&self) -> Result<Vec<(u64, SavedUser)>, sqlx::Error> {
        let rows: Vec<(i64, String, Option<String>, bool)> = sqlx::query_as("SELECT id, email, role, super_admin FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, email, role, admin)| (id as u64, (email, role, admin)))
            .collect())
    }

    /// Saves account users (`None`: the user was removed).
    pub async fn save_users(&self, users: Vec<(u64, Option<SavedUser>)>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (id, user) in users {
            match user {
                Some((email, role, admin)) => {
                    sqlx::query("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)")
                        .bind(id as i64)
                        .bind(email)
                        .bind(role)
                        .bind(admin)
                        .execute(&mut *tx)
                        .await?
                }
                None => {
                    sqlx::query("DELETE FROM users WHERE id = ?")
                        .bind(id as i64)
                        .execute(&mut *tx)
                        .await?
                }
            };
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

/// An account user (HubSpot flavor): email, role id, super admin.
pub type SavedUser = (String, Option<String>, bool);

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
