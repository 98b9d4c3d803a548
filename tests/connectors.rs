//! The `sqlite` and `files` connectors read, write and describe real files, and writing back what
//! was read reproduces the same canonical records (the basis of restore).

mod common;

use std::collections::BTreeMap;

use futures::StreamExt;
use rollback::connectors::{self, ApplyMode, Connector};
use rollback::digest::ObjectDigester;
use rollback::playbook::Playbook;
use rollback::record::Record;

async fn all(connector: &dyn Connector, object: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut pages = connector.export(object, None);
    while let Some(page) = pages.next().await {
        out.extend(page.unwrap());
    }
    out
}

fn digest(records: &[Record]) -> rollback::digest::Hash32 {
    let mut d = ObjectDigester::new();
    for r in records {
        d.push(&r.id, r.hash());
    }
    d.finish().digest
}

async fn connector(dir: &std::path::Path, name: &str) -> std::sync::Arc<dyn Connector> {
    let playbook = Playbook::load(&dir.join("rollback.yaml"), None).unwrap();
    connectors::build(playbook.connector(name).unwrap()).await.unwrap()
}

/// SQLite: export → delete and damage → apply + delete back → the same digest; types normalise.
#[tokio::test]
async fn sqlite_round_trip_restores_exact_records() {
    let s = common::Sandbox::init(500);
    let legacy = connector(s.dir.path(), "legacy").await;
    let deals = all(legacy.as_ref(), "deals").await;
    assert_eq!(deals.len(), 100);
    let before = digest(&deals);
    let sample = &deals[0];
    assert!(
        sample.fields["amount"].is_string(),
        "decimals are strings: {:?}",
        sample.fields["amount"]
    );
    assert!(
        sample.fields["created_at"].as_str().unwrap().ends_with('Z'),
        "timestamps are RFC 3339 UTC"
    );
    assert!(sample.fields["id"].is_number());
    assert!(sample.modified_at.is_some());

    let db = s.db("legacy").await;
    sqlx::query("UPDATE deals SET amount = 1.5, stage = NULL WHERE id <= 10")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM deals WHERE id > 90").execute(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO deals (id, name, created_at, updated_at) VALUES (5000, 'extra', '2026-11-22T00:00:00Z', '2026-11-22T00:00:00Z')",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    assert_ne!(digest(&all(legacy.as_ref(), "deals").await), before);

    legacy.apply("deals", &deals, ApplyMode::Upsert).await.unwrap();
    assert_eq!(legacy.delete("deals", &["5000".to_string()]).await.unwrap(), 1);
    assert_eq!(digest(&all(legacy.as_ref(), "deals").await), before);
    assert_eq!(legacy.count("deals").await.unwrap(), 100);

    let schema = legacy.describe().await.unwrap();
    assert_eq!(schema["objects"]["deals"]["foreign_keys"].as_array().unwrap().len(), 2);
    assert_eq!(schema["objects"]["contacts"]["columns"][0]["name"], "id");
}

/// SQLite: a record with a field the table lacks is refused, naming object and record.
#[tokio::test]
async fn sqlite_apply_rejects_unknown_fields() {
    let s = common::Sandbox::init(20);
    let legacy = connector(s.dir.path(), "legacy").await;
    let mut record = all(legacy.as_ref(), "contacts").await.remove(0);
    record.fields.insert("shoe_size".into(), serde_json::json!(44));
    let err = legacy
        .apply("contacts", &[record], ApplyMode::Upsert)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("object `contacts`") && err.contains("record `1`") && err.contains("no column `shoe_size`"),
        "{err}"
    );
}

/// Files: JSON lines and CSV read, write (upsert, delete) and export `since` a time.
#[tokio::test]
async fn files_connector_reads_and_writes_jsonl_and_csv() {
    let s = common::Sandbox::empty();
    s.write("data/contacts.jsonl", "{\"id\": 1, \"name\": \"Ann\", \"updated\": \"2026-11-01T00:00:00Z\"}\n{\"id\": 2, \"name\": \"Bø\", \"updated\": \"2026-11-21T00:00:00Z\"}\n");
    s.write("data/deals.csv", "id,title,amount\n10,Big,\"1,200.50\"\n11,Small,\n");
    s.write(
        "rollback.yaml",
        "version: 1\nname: files\nconnectors:\n  crm:\n    type: files\n    path: data\n    objects:\n      contacts: { modified: updated }\n      deals: { file: deals.csv }\nphases:\n  backup:\n    - backup: { from: crm }\n",
    );
    let crm = connector(s.dir.path(), "crm").await;
    let contacts = all(crm.as_ref(), "contacts").await;
    assert_eq!(contacts.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    let since = rollback::record::parse_time("2026-11-20T00:00:00Z");
    let mut recent = Vec::new();
    let mut pages = crm.export("contacts", since);
    while let Some(p) = pages.next().await {
        recent.extend(p.unwrap());
    }
    assert_eq!(recent.len(), 1);
    let deals = all(crm.as_ref(), "deals").await;
    assert_eq!(deals[0].fields["amount"], "1,200.50");
    assert_eq!(deals[1].fields["amount"], serde_json::Value::Null);

    let mut changed = contacts[0].clone();
    changed.fields.insert("name".into(), serde_json::json!("Anne"));
    let mut added = contacts[1].clone();
    added.id = "3".into();
    added.fields.insert("id".into(), serde_json::json!(3));
    crm.apply("contacts", &[changed, added], ApplyMode::Upsert).await.unwrap();
    assert_eq!(crm.delete("contacts", &["2".into()]).await.unwrap(), 1);
    let after: BTreeMap<String, Record> = all(crm.as_ref(), "contacts").await.into_iter().map(|r| (r.id.clone(), r)).collect();
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), ["1", "3"]);
    assert_eq!(after["1"].fields["name"], "Anne");

    crm.apply("deals", &deals, ApplyMode::Upsert).await.unwrap();
    assert_eq!(digest(&all(crm.as_ref(), "deals").await), digest(&deals));
    s.run(&["execute", "--phase", "backup"]).ok().says("contacts 2, deals 2");
    s.run(&["verify", "--connector", "crm"]).ok();
}

/// Files: a malformed line is an error naming the file and line.
#[tokio::test]
async fn files_connector_names_bad_lines() {
    let s = common::Sandbox::empty();
    s.write("data/contacts.jsonl", "{\"id\": 1}\nnot json\n");
    s.write("rollback.yaml", "version: 1\nname: files\nconnectors:\n  crm:\n    type: files\n    path: data\n    objects: [contacts]\nphases:\n  backup:\n    - backup: { from: crm }\n");
    s.run(&["execute", "--phase", "backup"])
        .exits(1)
        .says("contacts.jsonl` line 2")
        .says("object `contacts`");
}

/// A SQLite CRM with one table of hostile values of every type, and its playbook.
async fn odd_crm() -> common::Sandbox {
    let s = common::Sandbox::empty();
    let db_path = s.path("odd.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db_path).create_if_missing(true);
    let db = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query(
        "CREATE TABLE odd (key TEXT PRIMARY KEY, n INTEGER, r REAL, d DECIMAL(10,2), b BOOLEAN, t DATETIME, \
         changed TEXT, label VARCHAR(40), data BLOB, free)",
    )
    .execute(&db)
    .await
    .unwrap();
    let texts = [
        "plain",
        "quote \" inside",
        "back\\slash",
        "new\nline\ttab",
        "ctl \u{1} \u{1f}",
        "ünïcödé 日本 🎉",
        "line sep \u{2028}",
        "",
        "  padded  ",
        "del \u{7f}",
    ];
    let times = [
        "2024-02-29T23:59:59Z",
        "2024-02-29 23:59:59",
        "2024-01-01T00:00:00.5Z",
        "2024-01-01T00:00:00+02:00",
        "2023-02-29T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "not a time",
        " 2024-05-05T05:05:05Z ",
    ];
    for i in 0..200i64 {
        let text = texts[i as usize % texts.len()];
        let time = times[i as usize % times.len()];
        let mut q = sqlx::query("INSERT INTO odd VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(format!("k{i}{}", if i % 7 == 0 { "\"q" } else { "" }));
        q = match i % 5 {
            0 => q.bind(None::<i64>),
            1 => q.bind(i64::MAX - i),
            2 => q.bind(-i),
            _ => q.bind(i),
        };
        q = match i % 6 {
            0 => q.bind(0.1 * i as f64),
            1 => q.bind(1e300),
            2 => q.bind(f64::INFINITY),
            3 => q.bind(-0.0f64),
            4 => q.bind(None::<f64>),
            _ => q.bind(i as f64),
        };
        q = match i % 4 {
            0 => q.bind(12.5),
            1 => q.bind(i),
            2 => q.bind("1234.50"),
            _ => q.bind(None::<String>),
        };
        q = match i % 4 {
            0 => q.bind(true),
            1 => q.bind(2),
            2 => q.bind("yes"),
            _ => q.bind(None::<bool>),
        };
        q = q.bind(time).bind(if i % 3 == 0 { times[0] } else { time });
        q = if i % 11 == 0 { q.bind(vec![0u8, 1, 2, 255]) } else { q.bind(text) };
        q = if i % 2 == 0 {
            q.bind(vec![i as u8; 3])
        } else {
            q.bind(None::<Vec<u8>>)
        };
        q = match i % 4 {
            0 => q.bind(text),
            1 => q.bind(2.5),
            2 => q.bind(i),
            _ => q.bind(vec![9u8]),
        };
        q.execute(&db).await.unwrap();
    }
    db.close().await;
    std::fs::write(
        s.path("rollback.yaml"),
        "version: 1\nname: odd\nstore: { path: .rollback }\nconnectors:\n  odd:\n    type: sqlite\n    path: odd.db\n    objects:\n      odd: { table: odd, id: key, modified: changed }\nphases:\n  backup:\n    - backup: { from: odd }\n",
    )
    .unwrap();
    s
}

/// SQLite: the fast path that writes chunk lines straight from SQLite's rows gives exactly the
/// bytes, ids, hashes and times of encoding the records, for every kind of value.
#[tokio::test]
async fn sqlite_encoded_export_equals_record_path() {
    let s = odd_crm().await;
    let odd = connector(s.dir.path(), "odd").await;
    let records = all(odd.as_ref(), "odd").await;
    assert_eq!(records.len(), 200);
    let expected = connectors::EncodedPage::from_records(&records);
    let mut pages = odd.export_encoded("odd", None);
    let mut got = connectors::EncodedPage::default();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        got.lines.extend_from_slice(&page.lines);
        for (id, row) in page.iter() {
            got.push_row(id, row.hash, row.modified_at, row.deleted);
        }
    }
    let lines = |p: &connectors::EncodedPage| {
        let text = String::from_utf8(p.lines.clone()).unwrap();
        text.lines().map(str::to_string).collect::<Vec<_>>()
    };
    for (want, have) in lines(&expected).iter().zip(lines(&got).iter()) {
        assert_eq!(want, have);
    }
    assert_eq!(lines(&expected).len(), lines(&got).len());
    let rows = |p: &connectors::EncodedPage| p.iter().map(|(id, r)| (id.to_string(), r.hash, r.modified_at)).collect::<Vec<_>>();
    assert_eq!(rows(&expected), rows(&got));
    assert!(got.iter().any(|(_, r)| r.modified_at.is_some()) && got.iter().any(|(_, r)| r.modified_at.is_none()));
}

/// SQLite: in a table that references itself, a batch may hold a row before the row it refers
/// to (foreign keys are checked at commit); a reference to a missing row still fails the batch.
#[tokio::test]
async fn sqlite_apply_defers_self_references_to_commit() {
    let s = common::Sandbox::empty();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(s.path("people.db"))
        .create_if_missing(true);
    let db = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, manager_id INTEGER REFERENCES people(id))")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    std::fs::write(
        s.path("rollback.yaml"),
        "version: 1\nname: people\nstore: { path: .rollback }\nconnectors:\n  hr:\n    type: sqlite\n    path: people.db\n    objects:\n      people: { table: people }\nphases:\n  backup:\n    - backup: { from: hr }\n",
    )
    .unwrap();
    let hr = connector(s.dir.path(), "hr").await;
    let person = |id: i64, manager: Option<i64>| {
        let mut fields = rollback::record::Fields::new();
        fields.insert("id".into(), serde_json::json!(id));
        fields.insert("name".into(), serde_json::json!(format!("p{id}")));
        fields.insert("manager_id".into(), serde_json::json!(manager));
        Record::from_fields(&"people".into(), fields, "id", None).unwrap()
    };
    let batch = vec![person(2, Some(1)), person(3, Some(2)), person(1, None)];
    hr.apply("people", &batch, ApplyMode::Upsert).await.unwrap();
    assert_eq!(hr.count("people").await.unwrap(), 3);
    let err = hr
        .apply("people", &[person(4, Some(99))], ApplyMode::Upsert)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("FOREIGN KEY"), "{err}");
    assert_eq!(hr.count("people").await.unwrap(), 3, "the failed batch wrote nothing");
}

/// SQLite: REAL values arrive bit-exact, including those SQLite's own formatting gets wrong
/// (extreme exponents), and writing them back stores the same bits.
#[tokio::test]
async fn sqlite_reals_are_exact_both_ways() {
    let s = common::Sandbox::empty();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(s.path("reals.db"))
        .create_if_missing(true);
    let db = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("CREATE TABLE m (id INTEGER PRIMARY KEY, v REAL, d DECIMAL(20,4), note TEXT)")
        .execute(&db)
        .await
        .unwrap();
    let mut values = [
        1e300,
        1.0000000000000002e180,
        3.5754298975814156e-270,
        1.3338504354350495e-281,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        -0.1,
        0.1 + 0.2,
        1234.5,
        -9.87654321e-5,
    ]
    .to_vec();
    // And random doubles of every magnitude, and of the magnitudes money has.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let v = match i % 4 {
            0 => f64::from_bits(state),
            1 => f64::from_bits(state >> 1) * if state & 1 == 0 { 1.0 } else { -1.0 },
            2 => (state % 1_000_000_000) as f64 / 100.0,
            _ => (state % 1_000_000) as f64 * 1e-9,
        };
        if v.is_finite() {
            values.push(v);
        }
    }
    for (i, v) in values.iter().enumerate() {
        sqlx::query("INSERT INTO m VALUES (?, ?, ?, 'x')")
            .bind(i as i64 + 1)
            .bind(v)
            .bind(v)
            .execute(&db)
            .await
            .unwrap();
    }
    std::fs::write(
        s.path("rollback.yaml"),
        "version: 1\nname: reals\nstore: { path: .rollback }\nconnectors:\n  m:\n    type: sqlite\n    path: reals.db\n    objects:\n      m: { table: m }\nphases:\n  backup:\n    - backup: { from: m }\n",
    )
    .unwrap();
    let m = connector(s.dir.path(), "m").await;
    let mut records = all(m.as_ref(), "m").await;
    records.sort_by_key(|r| r.id.parse::<i64>().unwrap());
    assert_eq!(records.len(), values.len());
    for (record, v) in records.iter().zip(&values) {
        let got = record.fields["v"].as_f64().unwrap();
        assert_eq!(got.to_bits(), v.to_bits(), "REAL {v:e} came back as {got:e}");
        assert_eq!(record.fields["d"], serde_json::json!(format!("{v}")), "decimals as exact text");
    }
    // The fast path agrees, and a write of the records stores the same bits.
    let mut encoded = Vec::new();
    let mut pages = m.export_encoded("m", None);
    while let Some(page) = pages.next().await {
        encoded.extend_from_slice(&page.unwrap().lines);
    }
    let sorted_lines = |bytes: &[u8]| {
        let mut lines: Vec<String> = String::from_utf8(bytes.to_vec()).unwrap().lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted_lines(&connectors::EncodedPage::from_records(&records).lines),
        sorted_lines(&encoded)
    );
    sqlx::query("UPDATE m SET v = 0, d = 0").execute(&db).await.unwrap();
    m.apply("m", &records, ApplyMode::Upsert).await.unwrap();
    let stored: Vec<(f64,)> = sqlx::query_as("SELECT v FROM m ORDER BY id").fetch_all(&db).await.unwrap();
    for ((got,), v) in stored.iter().zip(&values) {
        assert_eq!(got.to_bits(), v.to_bits(), "REAL {v:e} was written back as {got:e}");
    }
    // The restore's way: from the snapshot's lines.
    sqlx::query("UPDATE m SET v = 0, d = 0").execute(&db).await.unwrap();
    m.apply_lines("m", &encoded).await.unwrap();
    let stored: Vec<(f64,)> = sqlx::query_as("SELECT v FROM m ORDER BY id").fetch_all(&db).await.unwrap();
    for ((got,), v) in stored.iter().zip(&values) {
        assert_eq!(got.to_bits(), v.to_bits(), "REAL {v:e} was written back from its line as {got:e}");
    }
}

/// SQLite: writing records from snapshot lines (the restore's path) stores exactly what writing
/// the records does, for every kind of value; bad lines are refused naming line, record, field.
#[tokio::test]
async fn sqlite_apply_lines_equals_apply() {
    let s = odd_crm().await;
    let odd = connector(s.dir.path(), "odd").await;
    let records = all(odd.as_ref(), "odd").await;
    let lines = connectors::EncodedPage::from_records(&records).lines;
    let db = s.db_at("odd.db").await;
    let sorted = |mut r: Vec<Record>| {
        r.sort_by(|a, b| a.id.cmp(&b.id));
        r
    };
    sqlx::query("DELETE FROM odd").execute(&db).await.unwrap();
    odd.apply("odd", &records, ApplyMode::Upsert).await.unwrap();
    let by_records = sorted(all(odd.as_ref(), "odd").await);
    sqlx::query("DELETE FROM odd").execute(&db).await.unwrap();
    let written = odd.apply_lines("odd", &lines).await.unwrap().written;
    assert_eq!(written, records.len() as u64);
    let by_lines = sorted(all(odd.as_ref(), "odd").await);
    assert_eq!(by_lines.len(), by_records.len());
    for (a, b) in by_records.iter().zip(&by_lines) {
        assert_eq!(a, b, "written from records vs from lines");
    }
    // And both store what was read.
    for (a, b) in sorted(records.clone()).iter().zip(&by_lines) {
        assert_eq!(a, b, "read vs written back");
    }

    let err = odd
        .apply_lines("odd", b"{\"deleted\":false,garbage\n")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unreadable snapshot line"), "{err}");
    let mut stranger = records[3].clone();
    stranger.fields.insert("shoe_size".into(), serde_json::json!(44));
    let line = connectors::EncodedPage::from_records(&[stranger]).lines;
    let err = odd.apply_lines("odd", &line).await.unwrap_err().to_string();
    assert!(
        err.contains("no column `shoe_size`") && err.contains(&format!("record `{}`", records[3].id)),
        "{err}"
    );
    assert_eq!(
        odd.count("odd").await.unwrap(),
        records.len() as u64,
        "a refused batch writes nothing"
    );
}

/// SQLite: reading chosen ids gives exactly those records' lines and hashes from a full export,
/// and leaves out ids the table does not hold.
#[tokio::test]
async fn sqlite_export_ids_equals_the_full_export() {
    let s = odd_crm().await;
    let odd = connector(s.dir.path(), "odd").await;
    let mut pages = odd.export_encoded("odd", None);
    let mut full = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        let lines: Vec<&[u8]> = page.lines.split(|b| *b == b'\n').collect();
        for (i, (id, row)) in page.iter().enumerate() {
            full.insert(id.to_string(), (row.hash, lines[i].to_vec()));
        }
    }
    let mut wanted: Vec<String> = full.keys().step_by(7).cloned().collect();
    wanted.push("no-such-id".into());
    let mut got = BTreeMap::new();
    let mut pages = odd.export_ids("odd", wanted.clone());
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        let lines: Vec<&[u8]> = page.lines.split(|b| *b == b'\n').collect();
        for (i, (id, row)) in page.iter().enumerate() {
            got.insert(id.to_string(), (row.hash, lines[i].to_vec()));
        }
    }
    let expected: BTreeMap<String, _> = wanted
        .iter()
        .filter_map(|id| full.get(id).map(|v| (id.clone(), v.clone())))
        .collect();
    assert_eq!(expected.len(), wanted.len() - 1);
    assert_eq!(got, expected);
}

/// SQLite: the outside-writes mark stays the same across the connector's own writes and changes
/// when anyone else commits.
#[tokio::test]
async fn sqlite_mark_sees_only_outside_writes() {
    let s = common::Sandbox::init(50);
    let legacy = connector(s.dir.path(), "legacy").await;
    let before = legacy.outside_writes_mark().await.expect("sqlite can tell");
    let records = all(legacy.as_ref(), "contacts").await;
    legacy.apply("contacts", &records[..5], ApplyMode::Upsert).await.unwrap();
    legacy.delete("contacts", &[records[6].id.clone()]).await.unwrap();
    assert_eq!(legacy.outside_writes_mark().await, Some(before), "own writes");
    s.write_as_tool("legacy", &["UPDATE contacts SET notes = 'outside' WHERE id = 1"])
        .await;
    assert_ne!(legacy.outside_writes_mark().await, Some(before), "another connection's commit");
}

/// SQLite: a batch whose records refer to a parent row that does not exist is refused whole,
/// naming the record, the column and the parent table.
#[tokio::test]
async fn sqlite_apply_refuses_missing_parents() {
    let s = common::Sandbox::init(50);
    let legacy = connector(s.dir.path(), "legacy").await;
    let mut records = all(legacy.as_ref(), "contacts").await;
    let before = legacy.count("contacts").await.unwrap();
    let mut orphan = records.pop().unwrap();
    orphan.id = "777777".into();
    orphan.fields.insert("id".into(), serde_json::json!(777777));
    orphan.fields.insert("company_id".into(), serde_json::json!(999999));
    let batch = vec![records[0].clone(), orphan];
    let err = legacy.apply("contacts", &batch, ApplyMode::Upsert).await.unwrap_err().to_string();
    assert!(err.contains("FOREIGN KEY"), "{err}");
    assert!(
        err.contains("`777777`") && err.contains("company_id") && err.contains("companies"),
        "{err}"
    );
    assert_eq!(legacy.count("contacts").await.unwrap(), before, "nothing of the batch was written");
}

/// SQLite: the parent rowids an upsert checks against follow the database: a company added by
/// someone else, or by the connector itself, can be referred to at once, and one deleted by
/// someone else no longer can.
#[tokio::test]
async fn sqlite_parent_checks_see_new_and_removed_parents() {
    let s = common::Sandbox::init(50);
    let legacy = connector(s.dir.path(), "legacy").await;
    let contacts = all(legacy.as_ref(), "contacts").await;
    let companies = all(legacy.as_ref(), "companies").await;
    let with_company = |id: i64, company: i64| {
        let mut r = contacts[0].clone();
        r.id = id.to_string();
        r.fields.insert("id".into(), serde_json::json!(id));
        r.fields.insert("company_id".into(), serde_json::json!(company));
        r
    };
    // The first batch loads the parents' rowids.
    legacy
        .apply("contacts", &[with_company(900_001, 1)], ApplyMode::Upsert)
        .await
        .unwrap();
    s.write_as_tool(
        "legacy",
        &["INSERT INTO companies (id, name, created_at, updated_at) VALUES (800, 'Outside Co', '2026-11-21T09:00:00Z', '2026-11-21T09:00:00Z')"],
    )
    .await;
    legacy
        .apply("contacts", &[with_company(900_002, 800)], ApplyMode::Upsert)
        .await
        .unwrap();
    let mut own = companies[0].clone();
    own.id = "801".into();
    own.fields.insert("id".into(), serde_json::json!(801));
    legacy.apply("companies", &[own], ApplyMode::Upsert).await.unwrap();
    legacy
        .apply("contacts", &[with_company(900_003, 801)], ApplyMode::Upsert)
        .await
        .unwrap();
    s.write_as_tool(
        "legacy",
        &[
            "DELETE FROM contacts WHERE company_id = 800",
            "DELETE FROM companies WHERE id = 800",
        ],
    )
    .await;
    let err = legacy
        .apply("contacts", &[with_company(900_004, 800)], ApplyMode::Upsert)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("FOREIGN KEY") && err.contains("`900004`"), "{err}");
}

/// SQLite: the writer empties its journal instead of deleting it while it writes, and leaves
/// the database as it found it: in `journal_mode=DELETE`, with no journal file beside it.
#[tokio::test]
async fn sqlite_writer_leaves_the_journal_mode_as_it_was() {
    let s = common::Sandbox::init(50);
    let db = s.dir.path().join("sandbox/legacy.db");
    let journal = s.dir.path().join("sandbox/legacy.db-journal");
    let mode = || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0)).unwrap()
    };
    assert_eq!(mode(), "delete");
    {
        let legacy = connector(s.dir.path(), "legacy").await;
        // Changed records: SQLite writes nothing (and opens no journal) for identical rows.
        let mut records = all(legacy.as_ref(), "contacts").await;
        for r in &mut records {
            r.fields.insert("notes".into(), serde_json::json!("changed"));
        }
        legacy.apply("contacts", &records[..5], ApplyMode::Upsert).await.unwrap();
        legacy.apply("contacts", &records[5..9], ApplyMode::Upsert).await.unwrap();
        assert!(journal.exists(), "the emptied journal stays while the writer is open");
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
    }
    assert!(!journal.exists(), "closing the writer removes the journal");
    assert_eq!(mode(), "delete");
}
