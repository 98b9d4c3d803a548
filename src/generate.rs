//! Deterministic, realistic sandbox CRM data: companies, contacts and deals with foreign keys,
//! non-ASCII names, NULLs, long notes, decimal amounts and timestamps. The same seed and size
//! always give the same database contents.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::record::format_time;

/// The sandbox CRM schema (also used for the new CRM, which starts empty).
pub const SCHEMA: &str = "
CREATE TABLE companies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    domain TEXT,
    industry TEXT,
    employees INTEGER,
    annual_revenue DECIMAL(14,2),
    country TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    phone TEXT,
    company_id INTEGER REFERENCES companies(id),
    lifecycle_stage TEXT,
    owner TEXT,
    notes TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    company_id INTEGER REFERENCES companies(id),
    contact_id INTEGER REFERENCES contacts(id),
    stage TEXT,
    amount DECIMAL(12,2),
    currency TEXT,
    close_date DATE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);";

/// A small, fast, deterministic generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub(crate) const FIRST: &[&str] = &[
    "Ana", "José", "Zoë", "Øyvind", "Mia", "Lukas", "Chloé", "Søren", "Aiko", "Mateo", "Priya", "Björn", "Fatima", "Liam", "Élodie",
    "Jürgen", "Noah", "Ingrid", "Wei", "Olu", "Sofía", "Émile", "Nadia", "Tomás",
];
pub(crate) const LAST: &[&str] = &[
    "García",
    "Müller",
    "Nakamura",
    "O'Brien",
    "Dubois",
    "Kowalski",
    "Silva",
    "Andersson",
    "Nguyễn",
    "Rossi",
    "Jensen",
    "Smith",
    "Öztürk",
    "van Dijk",
    "Petrov",
    "Haddad",
    "Okafor",
    "Lindqvist",
    "田中",
    "Ramírez",
];
pub(crate) const COMPANY_A: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Nordlys",
    "Kaffeehaus",
    "Sakura",
    "Café Lumière",
    "Brightline",
    "Northwind",
    "Bluefin",
    "Zenith",
];
pub(crate) const COMPANY_B: &[&str] = &[
    "Industries",
    "Logistics",
    "GmbH",
    "Labs",
    "Holdings",
    "S.A.",
    "AB",
    "Software",
    "Partners",
    "Trading",
];
pub(crate) const INDUSTRY: &[&str] = &[
    "software",
    "retail",
    "manufacturing",
    "healthcare",
    "finance",
    "logistics",
    "education",
    "hospitality",
];
pub(crate) const COUNTRY: &[&str] = &["DE", "FR", "US", "JP", "NO", "BR", "IN", "NG", "ES", "SE"];
pub(crate) const STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
];
pub(crate) const DEAL_STAGES: &[&str] = &[
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];
pub(crate) const OWNERS: &[&str] = &["maria.lopez", "kenji.sato", "anna.schmidt", "sam.taylor", "leila.haddad"];
pub(crate) const NOTE_WORDS: &[&str] = &[
    "called",
    "about",
    "renewal",
    "pricing",
    "asked",
    "for",
    "a",
    "demo",
    "follow-up",
    "next",
    "week",
    "budget",
    "approved",
    "décision",
    "in",
    "Q1",
    "contract",
    "sent",
    "to",
    "legal",
    "team",
    "prefers",
    "email",
    "über",
    "onboarding",
];
const CURRENCIES: &[&str] = &["EUR", "USD", "JPY", "NOK"];

/// Sizes of the generated objects.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub companies: u64,
    pub contacts: u64,
    pub deals: u64,
}

impl Sizes {
    /// Sizes for `contacts` contacts.
    pub fn for_contacts(contacts: u64) -> Sizes {
        Sizes {
            companies: (contacts / 10).max(1),
            contacts,
            deals: contacts / 5,
        }
    }
}

fn time(rng: &mut Rng, before: DateTime<Utc>) -> (String, String) {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap().timestamp();
    let span = (before.timestamp() - start).max(1) as u64;
    let created = start + rng.below(span) as i64;
    let updated = created + rng.below((before.timestamp() - created).max(1) as u64) as i64;
    let t = |s: i64| format_time(&Utc.timestamp_opt(s, 0).unwrap());
    (t(created), t(updated))
}

fn note(rng: &mut Rng) -> Option<String> {
    if rng.chance(15) {
        return None;
    }
    let words = if rng.chance(2) { 300 } else { 8 + rng.below(20) };
    Some((0..words).map(|_| rng.pick(NOTE_WORDS)).collect::<Vec<_>>().join(" "))
}

/// Creates `path` (which must not exist) with the schema and, unless `sizes` is `None`, data.
pub async fn create_crm(path: &Path, sizes: Option<Sizes>, seed: u64, before: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .synchronous(SqliteSynchronous::Off)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    if let Some(sizes) = sizes {
        let mut rng = Rng::new(seed);
        let mut tx = pool.begin().await?;
        insert_rows(&mut tx, "companies", 9, sizes.companies, |id, values| {
            let name = format!("{} {}", rng.pick(COMPANY_A), rng.pick(COMPANY_B));
            let domain = format!(
                "{}{id}.example",
                name.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "")
            );
            let (created, updated) = time(&mut rng, before);
            values.extend([
                V::I(id as i64),
                V::T(name),
                V::T(domain),
                V::T(rng.pick(INDUSTRY).into()),
                if rng.chance(10) {
                    V::Null
                } else {
                    V::I(1 + rng.below(5000) as i64)
                },
                V::T(format!("{}.{:02}", rng.below(50_000_000), rng.below(100))),
                V::T(rng.pick(COUNTRY).into()),
                V::T(created),
                V::T(updated),
            ]);
        })
        .await?;
        insert_rows(&mut tx, "contacts", 11, sizes.contacts, |id, values| {
            let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
            let email = format!(
                "{}.{}{id}@example.com",
                first.to_lowercase(),
                last.to_lowercase().replace([' ', '\''], "")
            );
            let (created, updated) = time(&mut rng, before);
            values.extend([
                V::I(id as i64),
                V::T(email),
                V::T(first.into()),
                V::T(last.into()),
                if rng.chance(20) {
                    V::Null
                } else {
                    V::T(format!(
                        "+{} {} {:07}",
                        1 + rng.below(98),
                        100 + rng.below(900),
                        rng.below(10_000_000)
                    ))
                },
                if rng.chance(5) {
                    V::Null
                } else {
                    V::I(1 + rng.below(sizes.companies) as i64)
                },
                V::T(rng.pick(STAGES).into()),
                V::T(rng.pick(OWNERS).into()),
                note(&mut rng).map(V::T).unwrap_or(V::Null),
                V::T(created),
                V::T(updated),
            ]);
        })
        .await?;
        insert_rows(&mut tx, "deals", 10, sizes.deals, |id, values| {
            let (created, updated) = time(&mut rng, before);
            values.extend([
                V::I(id as i64),
                V::T(format!("{} – {} seats", rng.pick(COMPANY_A), 5 + rng.below(500))),
                V::I(1 + rng.below(sizes.companies) as i64),
                if rng.chance(10) || sizes.contacts == 0 {
                    V::Null
                } else {
                    V::I(1 + rng.below(sizes.contacts) as i64)
                },
                V::T(rng.pick(DEAL_STAGES).into()),
                V::T(format!("{}.{:02}", rng.below(250_000), rng.below(100))),
                V::T(rng.pick(CURRENCIES).into()),
                V::T(format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))),
                V::T(created),
                V::T(updated),
            ]);
        })
        .await?;
        tx.commit().await?;
    }
    pool.close().await;
    Ok(())
}

enum V {
    Null,
    I(i64),
    T(String),
}

async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    table: &str,
    columns: usize,
    count: u64,
    mut row: impl FnMut(u64, &mut Vec<V>),
) -> Result<(), sqlx::Error> {
    let per_statement = 30_000 / columns;
    let mut id = 1;
    while id <= count {
        let n = per_statement.min((count - id + 1) as usize);
        let mut values = Vec::with_capacity(n * columns);
        for _ in 0..n {
            row(id, &mut values);
            id += 1;
        }
        let placeholders = format!("({})", vec!["?"; columns].join(","));
        let sql = format!("INSERT INTO {table} VALUES {}", vec![placeholders; n].join(","));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for v in values {
            query = match v {
                V::Null => query.bind(None::<i64>),
                V::I(i) => query.bind(i),
                V::T(s) => query.bind(s),
            };
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
