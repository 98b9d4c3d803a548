//! `rollback sandbox serve --flavor salesforce` over real HTTPS on 127.0.0.1 (reqwest trusting
//! only the CA the server wrote): SOQL queries and paging, describe, sObject rows, upsert by
//! external id, collections, UserLogin freezes, auth, limits, faults, persistence.

mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use common::{SANDBOX_TOKEN as TOKEN, Served};

const V: &str = "/services/data/v59.0";

/// A client-side filter a SOQL condition must agree with.
type Predicate<'a> = Box<dyn Fn(&Value) -> bool + 'a>;

fn start(args: &[&str]) -> Served {
    let mut all = vec!["--flavor", "salesforce"];
    all.extend_from_slice(args);
    Served::start(&all)
}

fn q(soql: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    format!("{V}/query?q={encoded}")
}

/// Every record of a query, following `nextRecordsUrl`; also the number of pages.
async fn all_pages(s: &Served, first: &str, batch: Option<usize>) -> (Vec<Value>, usize) {
    let (mut records, mut pages, mut next) = (Vec::new(), 0, Some(first.to_string()));
    while let Some(path) = next {
        let mut request = s.http.get(s.url(&path)).bearer_auth(TOKEN);
        if let Some(n) = batch {
            request = request.header("Sforce-Query-Options", format!("batchSize={n}"));
        }
        let page: Value = request.send().await.unwrap().json().await.unwrap();
        pages += 1;
        records.extend(page["records"].as_array().unwrap_or_else(|| panic!("{page}")).iter().cloned());
        assert_eq!(page["done"].as_bool(), Some(page["nextRecordsUrl"].is_null()), "{page}");
        next = page["nextRecordsUrl"].as_str().map(str::to_string);
    }
    (records, pages)
}

async fn count(s: &Served, soql: &str) -> u64 {
    let (status, _, body) = s.call("GET", &q(soql), None).await;
    assert_eq!(status, 200, "{soql}: {body}");
    body["totalSize"].as_u64().unwrap()
}

fn ms(time: &Value) -> i64 {
    chrono::DateTime::parse_from_str(time.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.f%z")
        .unwrap()
        .timestamp_millis()
}

/// Query paging: `nextRecordsUrl` locators, batch sizes, record shape, 18-character ids.
#[tokio::test]
async fn salesforce_query_pages_through_every_record() {
    let s = start(&["--seed", "5000"]);
    let soql = "SELECT Id, Email, SystemModstamp FROM Contact";
    let (records, pages) = all_pages(&s, &q(soql), None).await;
    assert_eq!((records.len(), pages), (5000, 3), "pages of 2000 by default");
    let ids: BTreeSet<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 5000);
    assert!(ids.iter().all(|id| id.len() == 18 && id.starts_with("003")));
    let first = &records[0];
    assert_eq!(first["attributes"]["type"], "Contact");
    assert_eq!(
        first["attributes"]["url"],
        format!("{V}/sobjects/Contact/{}", first["Id"].as_str().unwrap())
    );
    assert!(first["SystemModstamp"].as_str().unwrap().ends_with("+0000"));
    let (_, _, page) = s.call("GET", &q(soql), None).await;
    assert_eq!(page["totalSize"], 5000);
    let next = page["nextRecordsUrl"].as_str().unwrap();
    assert!(next.starts_with(&format!("{V}/query/01g")) && next.ends_with("-2000"), "{next}");
    // batchSize=700 gives pages of 700; below 200 is raised to 200; trailing slashes work.
    let (again, pages) = all_pages(&s, &format!("{V}/query/?q=SELECT+Id+FROM+Contact"), Some(700)).await;
    assert_eq!((again.len(), pages), (5000, 8));
    let (_, _, small) = s.call("GET", &q("SELECT Id FROM Contact"), None).await;
    assert_eq!(small["records"].as_array().unwrap().len(), 2000);
    let r = s
        .http
        .get(s.url(&q("SELECT Id FROM Contact")))
        .bearer_auth(TOKEN)
        .header("Sforce-Query-Options", "batchSize=50")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["records"].as_array().unwrap().len(), 200);
    // Sorted queries page too; LIMIT caps the total.
    let (sorted, pages) = all_pages(
        &s,
        &q("SELECT Id, LastModifiedDate FROM Contact ORDER BY LastModifiedDate DESC LIMIT 300"),
        Some(200),
    )
    .await;
    assert_eq!((sorted.len(), pages), (300, 2));
    let times: Vec<i64> = sorted.iter().map(|r| ms(&r["LastModifiedDate"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // A locator that names no cursor.
    let (status, _, body) = s.call("GET", &format!("{V}/query/01g5S0000000999AAA-2000"), None).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("INVALID_QUERY_LOCATOR")));
}

/// SOQL operators give the records a client-side filter of the full export gives.
#[tokio::test]
async fn salesforce_soql_operators_match_a_client_side_filter() {
    let s = start(&["--seed", "3000"]);
    let (all, _) = all_pages(
        &s,
        &q("SELECT Id, LastName, Email, Phone, Title, LeadSource, CreatedDate, LastModifiedDate FROM Contact"),
        None,
    )
    .await;
    let text = |r: &Value, f: &str| r[f].as_str().unwrap_or_default().to_lowercase();
    let june = ms(&json!("2025-06-01T00:00:00.000+0000"));
    let cases: Vec<(&str, Predicate)> = vec![
        ("LeadSource = 'web'", Box::new(|r| text(r, "LeadSource") == "web")),
        ("LeadSource != 'Web'", Box::new(|r| text(r, "LeadSource") != "web")),
        ("Phone = null", Box::new(|r| r["Phone"].is_null())),
        (
            "Phone != null AND LeadSource IN ('Web', 'Other')",
            Box::new(|r| !r["Phone"].is_null() && ["web", "other"].contains(&text(r, "LeadSource").as_str())),
        ),
        ("LeadSource NOT IN ('Web')", Box::new(|r| text(r, "LeadSource") != "web")),
        (
            "LastModifiedDate >= 2025-06-01T00:00:00Z",
            Box::new(move |r| ms(&r["LastModifiedDate"]) >= june),
        ),
        (
            "LastModifiedDate < 2025-06-01T00:00:00.000+0000",
            Box::new(move |r| ms(&r["LastModifiedDate"]) < june),
        ),
        (
            "Email LIKE '%1@EXAMPLE.com'",
            Box::new(|r| text(r, "Email").ends_with("1@example.com")),
        ),
        (
            "(LeadSource = 'Web' OR LeadSource = 'Other') AND NOT LastName LIKE 's%'",
            Box::new(|r| ["web", "other"].contains(&text(r, "LeadSource").as_str()) && !text(r, "LastName").starts_with('s')),
        ),
        ("Title <= 'CFO'", Box::new(|r| text(r, "Title").as_str() <= "cfo")),
        (
            "Title > 'CFO' AND CreatedDate > 2024-06-01",
            Box::new(|r| text(r, "Title").as_str() > "cfo" && ms(&r["CreatedDate"]) > ms(&json!("2024-06-01T00:00:00.000+0000"))),
        ),
    ];
    for (condition, expected) in cases {
        let want = all.iter().filter(|r| expected(r)).count() as u64;
        assert!(want > 0 && want < 3000, "`{condition}` should select some but not all ({want})");
        assert_eq!(
            count(&s, &format!("SELECT Id FROM Contact WHERE {condition}")).await,
            want,
            "{condition}"
        );
        assert_eq!(
            count(&s, &format!("SELECT COUNT() FROM Contact WHERE {condition}")).await,
            want,
            "COUNT() {condition}"
        );
    }
    // Ids match in 15 and 18 characters; booleans; LIMIT with COUNT().
    let id = all[7]["Id"].as_str().unwrap();
    assert_eq!(count(&s, &format!("SELECT Id FROM Contact WHERE Id = '{}'", &id[..15])).await, 1);
    assert_eq!(
        count(
            &s,
            &format!("SELECT Id FROM Contact WHERE Id IN ('{id}', '{}')", all[8]["Id"].as_str().unwrap())
        )
        .await,
        2
    );
    assert_eq!(count(&s, "SELECT Id FROM Contact WHERE IsDeleted = false").await, 3000);
    assert_eq!(
        count(&s, "select id from contact limit 10").await,
        10,
        "names and keywords in any case"
    );

    // Errors: malformed, unknown field, unknown object, a literal of the wrong type.
    for (soql, code) in [
        ("SELECT Id FRM Contact", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email = 'open", "MALFORMED_QUERY"),
        ("SELECT Shoe_Size__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE Shoe = 1", "INVALID_FIELD"),
        ("SELECT Id FROM Contact ORDER BY Shoe", "INVALID_FIELD"),
        ("SELECT Id FROM Lead__x", "INVALID_TYPE"),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate > '2025-01-01T00:00:00Z'",
            "INVALID_FIELD",
        ),
        ("SELECT Id FROM Contact WHERE IsDeleted = 'false'", "INVALID_FIELD"),
    ] {
        let (status, _, body) = s.call("GET", &q(soql), None).await;
        assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some(code)), "{soql}: {body}");
        assert!(body[0]["message"].is_string());
    }
    let (status, _, body) = s.call("GET", &format!("{V}/query"), None).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("MALFORMED_QUERY")), "no q");

    // Mangled queries never crash the server or answer 500.
    let valid = "SELECT Id, Email FROM Contact WHERE (LastName LIKE 'a%' OR Phone != null) AND CreatedDate > 2025-01-01T00:00:00Z ORDER BY Email DESC LIMIT 5";
    let mut state = 7u64;
    for _ in 0..150 {
        let mut chars: Vec<char> = valid.chars().collect();
        for _ in 0..3 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (state >> 33) as usize % chars.len();
            match (state >> 20) % 3 {
                0 => {
                    chars.remove(at);
                }
                1 => chars.insert(at, "()',=<>%_ \\'"[((state >> 8) % 12) as usize..].chars().next().unwrap()),
                _ => chars.truncate(at.max(1)),
            }
        }
        let mangled: String = chars.into_iter().collect();
        let (status, _, _) = s.call("GET", &q(&mangled), None).await;
        assert!(status == 200 || status == 400, "`{mangled}` answered {status}");
    }
    assert_eq!(count(&s, "SELECT Id FROM Account").await, 300, "still serving");
}

/// Versions, global and object describe, and Salesforce's answers for unknown paths.
#[tokio::test]
async fn salesforce_describe_and_versions() {
    let s = start(&["--seed", "20"]);
    let (_, _, versions) = s.call("GET", "/services/data/", None).await;
    assert!(versions.as_array().unwrap().iter().any(|v| v["version"] == "59.0" && v["url"] == V));
    let (_, _, global) = s.call("GET", &format!("{V}/sobjects/"), None).await;
    assert_eq!(global["maxBatchSize"], 200);
    let prefixes: Vec<(String, String)> = global["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["keyPrefix"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for pair in [
        ("Account", "001"),
        ("Contact", "003"),
        ("Opportunity", "006"),
        ("Case", "500"),
        ("User", "005"),
        ("UserLogin", "060"),
    ] {
        assert!(
            prefixes.contains(&(pair.0.to_string(), pair.1.to_string())),
            "{pair:?} in {prefixes:?}"
        );
    }
    let (status, _, contact) = s.call("GET", &format!("{V}/sobjects/Contact/describe"), None).await;
    assert_eq!(status, 200);
    let field = |name: &str| {
        contact["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(field("Id")["type"], "id");
    assert_eq!(field("AccountId")["referenceTo"], json!(["Account"]));
    assert_eq!(field("SystemModstamp")["type"], "datetime");
    assert_eq!(field("SystemModstamp")["updateable"], false);
    assert_eq!(field("External_Id__c")["externalId"], true);
    assert_eq!(field("LastName")["nillable"], false);
    assert_eq!(field("IsDeleted")["type"], "boolean");
    let (_, _, login) = s.call("GET", &format!("{V}/sobjects/UserLogin/describe/"), None).await;
    assert_eq!(
        (login["createable"].as_bool(), login["deletable"].as_bool()),
        (Some(false), Some(false))
    );
    let (status, _, body) = s.call("GET", &format!("{V}/sobjects/Nope__c/describe"), None).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (404, Some("NOT_FOUND")));
    let (status, _, body) = s.call("GET", "/services/data/vX/sobjects", None).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (404, Some("NOT_FOUND")));
    let (status, _, _) = s.call("GET", "/services/data/v61.0/nothing/here", None).await;
    assert_eq!(status, 404);
}

/// Single-record create, read, update, delete; deletes show only to queryAll; upsert by external id.
#[tokio::test]
async fn salesforce_rows_upsert_and_query_all_after_delete() {
    let s = start(&["--seed", "50"]);
    let (status, _, created) = s
        .call(
            "POST",
            &format!("{V}/sobjects/Contact/"),
            Some(json!({"LastName": "Lovelace", "FirstName": "Ada", "Email": "ada@example.com"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!((created["success"].as_bool(), created["errors"].clone()), (Some(true), json!([])));
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("003") && id.len() == 18);
    let (status, _, read) = s
        .call("GET", &format!("{V}/sobjects/Contact/{id}?fields=LastName,LastModifiedDate"), None)
        .await;
    assert_eq!((status, read["LastName"].as_str()), (200, Some("Lovelace")));
    assert!(read.get("Email").is_none(), "only the fields asked for");
    let before = ms(&read["LastModifiedDate"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, _, _) = s
        .call(
            "PATCH",
            &format!("{V}/sobjects/Contact/{}", &id[..15]),
            Some(json!({"Title": "Countess"})),
        )
        .await;
    assert_eq!(status, 204, "15-character ids work too");
    let (_, _, read) = s.call("GET", &format!("{V}/sobjects/Contact/{id}"), None).await;
    assert_eq!(read["Title"], "Countess");
    assert!(ms(&read["LastModifiedDate"]) > before && read["SystemModstamp"] == read["LastModifiedDate"]);
    assert_eq!(read["CreatedDate"], created_date(&s, &id).await);

    // Refusals, in Salesforce's shapes.
    for (method, path, body, status, code) in [
        (
            "POST",
            format!("{V}/sobjects/Contact"),
            json!({"FirstName": "NoLast"}),
            400,
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "POST",
            format!("{V}/sobjects/Contact"),
            json!({"LastName": "X", "Shoe__c": 44}),
            400,
            "INVALID_FIELD",
        ),
        (
            "PATCH",
            format!("{V}/sobjects/Contact/{id}"),
            json!({"SystemModstamp": "2020-01-01T00:00:00Z"}),
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            "PATCH",
            format!("{V}/sobjects/Account/{id}"),
            json!({"Name": "x"}),
            400,
            "MALFORMED_ID",
        ),
        (
            "PATCH",
            format!("{V}/sobjects/Contact/0035S0000099999QAA"),
            json!({"Title": "x"}),
            404,
            "NOT_FOUND",
        ),
        (
            "POST",
            format!("{V}/sobjects/Opportunity"),
            json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "Amount": "lots"}),
            400,
            "JSON_PARSER_ERROR",
        ),
        ("POST", format!("{V}/sobjects/Nope"), json!({}), 404, "NOT_FOUND"),
    ] {
        let (got, _, answer) = s.call(method, &path, Some(body)).await;
        assert_eq!(
            (got, answer[0]["errorCode"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
    }
    let r = s
        .http
        .post(s.url(&format!("{V}/sobjects/Contact")))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()[0]["errorCode"], "JSON_PARSER_ERROR");

    // Delete: 204, then 404 ENTITY_IS_DELETED; query hides it, queryAll shows it as deleted.
    let (status, _, _) = s.call("DELETE", &format!("{V}/sobjects/Contact/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _, body) = s.call("GET", &format!("{V}/sobjects/Contact/{id}"), None).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (404, Some("ENTITY_IS_DELETED")));
    let soql = format!("SELECT Id, IsDeleted FROM Contact WHERE Id = '{id}'");
    assert_eq!(count(&s, &soql).await, 0);
    let encoded: String = form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    let (_, _, all) = s.call("GET", &format!("{V}/queryAll/?q={encoded}"), None).await;
    assert_eq!(
        (all["totalSize"].as_u64(), all["records"][0]["IsDeleted"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(count(&s, "SELECT Id FROM Contact").await, 50);

    // Upsert by external id: created (201), then updated (200), then read by it.
    let path = format!("{V}/sobjects/Account/External_Id__c/ERP-42");
    let (status, _, up) = s.call("PATCH", &path, Some(json!({"Name": "Forty Two Ltd"}))).await;
    assert_eq!((status, up["created"].as_bool()), (201, Some(true)));
    let (status, _, again) = s.call("PATCH", &path, Some(json!({"Industry": "Retail"}))).await;
    assert_eq!(
        (status, again["created"].as_bool(), again["id"].clone()),
        (200, Some(false), up["id"].clone())
    );
    let (_, _, by) = s.call("GET", &path, None).await;
    assert_eq!(
        (by["Name"].as_str(), by["Industry"].as_str(), by["External_Id__c"].as_str()),
        (Some("Forty Two Ltd"), Some("Retail"), Some("ERP-42"))
    );
    let (status, _, body) = s.call("PATCH", &format!("{V}/sobjects/Account/Name/x"), Some(json!({}))).await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (404, Some("NOT_FOUND")),
        "Name is no external id"
    );
}

async fn created_date(s: &Served, id: &str) -> Value {
    let (_, _, body) = s
        .call("GET", &q(&format!("SELECT CreatedDate FROM Contact WHERE Id = '{id}'")), None)
        .await;
    body["records"][0]["CreatedDate"].clone()
}

/// sObject Collections: create, update, upsert, delete, retrieve; allOrNone rolls a call back.
#[tokio::test]
async fn salesforce_collections_and_all_or_none() {
    let s = start(&["--seed", "40"]);
    let path = format!("{V}/composite/sobjects");
    let (status, _, created) = s
        .call(
            "POST",
            &path,
            Some(json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "LastName": "One"},
            {"attributes": {"type": "Contact"}, "FirstName": "NoLastName"},
            {"attributes": {"type": "Account"}, "Name": "Mixed Types Inc"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let results = created.as_array().unwrap();
    assert_eq!(
        results.iter().map(|r| r["success"].as_bool().unwrap()).collect::<Vec<_>>(),
        vec![true, false, true]
    );
    assert_eq!(results[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(results[1]["errors"][0]["fields"], json!(["LastName"]));
    assert!(results[2]["id"].as_str().unwrap().starts_with("001"));
    let one = results[0]["id"].as_str().unwrap().to_string();

    // allOrNone: one bad record and nothing is written.
    let before = count(&s, "SELECT Id FROM Contact").await;
    let (status, _, rolled) = s
        .call(
            "POST",
            &path,
            Some(json!({"allOrNone": true, "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Two"},
            {"attributes": {"type": "Contact"}, "LastName": "Three", "Bogus__c": 1}]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(rolled[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    assert_eq!(rolled[1]["errors"][0]["statusCode"], "INVALID_FIELD");
    assert_eq!(count(&s, "SELECT Id FROM Contact").await, before, "rolled back");

    // Update, upsert (one new, one existing), retrieve, delete.
    let (_, _, updated) = s
        .call(
            "PATCH",
            &path,
            Some(
                json!({"records": [{"attributes": {"type": "Contact"}, "id": one, "Title": "Updated"},
                                                       {"attributes": {"type": "Contact"}, "id": "0035S00000000zzQAA", "Title": "x"}]}),
            ),
        )
        .await;
    assert_eq!(
        (updated[0]["success"].as_bool(), updated[1]["success"].as_bool()),
        (Some(true), Some(false))
    );
    let (status, _, upserted) = s
        .call(
            "PATCH",
            &format!("{path}/Contact/External_Id__c"),
            Some(json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "External_Id__c": "CON-0000001", "Title": "Seeded and upserted"},
            {"attributes": {"type": "Contact"}, "External_Id__c": "NEW-1", "LastName": "Fresh"}]})),
        )
        .await;
    assert_eq!(status, 200, "{upserted}");
    assert_eq!(
        (upserted[0]["created"].as_bool(), upserted[1]["created"].as_bool()),
        (Some(false), Some(true))
    );
    let fresh = upserted[1]["id"].as_str().unwrap();
    let (_, _, read) = s
        .call(
            "GET",
            &format!("{path}/Contact?ids={one},{fresh},0035S0000009999QAA&fields=Title,LastName"),
            None,
        )
        .await;
    assert_eq!(read[0]["Title"], "Updated");
    assert_eq!(read[1]["LastName"], "Fresh");
    assert!(read[2].is_null());
    let (status, _, deleted) = s
        .call("DELETE", &format!("{path}?ids={one},{fresh},nonsense&allOrNone=false"), None)
        .await;
    assert_eq!(status, 200);
    let flags: Vec<bool> = deleted
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["success"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, vec![true, true, false]);
    assert_eq!(deleted[2]["errors"][0]["statusCode"], "MALFORMED_ID");
    let encoded: String =
        form_urlencoded::byte_serialize(format!("SELECT Id FROM Contact WHERE IsDeleted = true AND Id IN ('{one}', '{fresh}')").as_bytes())
            .collect();
    let (_, _, gone) = s.call("GET", &format!("{V}/queryAll?q={encoded}"), None).await;
    assert_eq!(gone["totalSize"], 2);

    // More than 200 records is refused whole.
    let many: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("N{i}")}))
        .collect();
    let (status, _, body) = s.call("POST", &path, Some(json!({"records": many}))).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("EXCEEDED_ID_LIMIT")));
}

/// UserLogin: freeze and unfreeze users by `IsFrozen`, singly and in a collection; never created.
#[tokio::test]
async fn salesforce_userlogin_freeze_and_unfreeze() {
    let s = start(&["--seed", "10"]);
    let (_, _, users) = s
        .call("GET", &q("SELECT Id, Username, IsActive FROM User ORDER BY Username"), None)
        .await;
    assert_eq!(users["totalSize"], 6);
    let integration = users["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["Username"] == "integration@example.com.sandbox")
        .unwrap()["Id"]
        .clone();
    let (_, _, logins) = s
        .call(
            "GET",
            &q(&format!(
                "SELECT Id, UserId, IsFrozen FROM UserLogin WHERE UserId != '{}' AND IsFrozen = false",
                integration.as_str().unwrap()
            )),
            None,
        )
        .await;
    assert_eq!(logins["totalSize"], 5, "every user but the integration user");
    let login = logins["records"][0]["Id"].as_str().unwrap().to_string();
    assert!(login.starts_with("060"));
    let path = format!("{V}/sobjects/UserLogin/{login}");
    let (status, _, _) = s.call("PATCH", &path, Some(json!({"IsFrozen": true}))).await;
    assert_eq!(status, 204);
    let (_, _, read) = s.call("GET", &path, None).await;
    assert_eq!(read["IsFrozen"], true);
    assert_eq!(count(&s, "SELECT Id FROM UserLogin WHERE IsFrozen = true").await, 1);
    let (status, _, _) = s.call("PATCH", &path, Some(json!({"IsFrozen": false}))).await;
    assert_eq!(status, 204);
    assert_eq!(count(&s, "SELECT Id FROM UserLogin WHERE IsFrozen = true").await, 0);
    // A batch freeze through sObject Collections.
    let batch: Vec<Value> = logins["records"].as_array().unwrap()[..2]
        .iter()
        .map(|l| json!({"attributes": {"type": "UserLogin"}, "id": l["Id"], "IsFrozen": true}))
        .collect();
    let (_, _, frozen) = s
        .call(
            "PATCH",
            &format!("{V}/composite/sobjects"),
            Some(json!({"allOrNone": true, "records": batch})),
        )
        .await;
    assert!(frozen.as_array().unwrap().iter().all(|r| r["success"] == true), "{frozen}");
    assert_eq!(count(&s, "SELECT Id FROM UserLogin WHERE IsFrozen = true").await, 2);
    // UserId is read-only; UserLogin and User are never created or deleted through the API.
    let (status, _, body) = s.call("PATCH", &path, Some(json!({"UserId": integration}))).await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (400, Some("INVALID_FIELD_FOR_INSERT_UPDATE"))
    );
    let (status, _, body) = s
        .call("POST", &format!("{V}/sobjects/UserLogin"), Some(json!({"IsFrozen": true})))
        .await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("INVALID_TYPE_FOR_OPERATION")));
    let (status, _, _) = s.call("DELETE", &path, None).await;
    assert_eq!(status, 400);
    let (status, _, body) = s.call("PATCH", &path, Some(json!({"IsFrozen": "yes"}))).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("JSON_PARSER_ERROR")));
}

/// The 401 body without the token, `Sforce-Limit-Info` on answers, 403 when the day is spent.
#[tokio::test]
async fn salesforce_auth_usage_header_and_daily_limit() {
    let s = start(&["--seed", "10", "--daily-limit", "3"]);
    let r = s.http.get(s.url(&format!("{V}/sobjects"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    let r = s
        .http
        .get(s.url(&format!("{V}/sobjects")))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    for used in 1..=3 {
        let (status, headers, _) = s.call("GET", &q("SELECT Id FROM Account"), None).await;
        assert_eq!(status, 200);
        assert_eq!(headers["sforce-limit-info"], format!("api-usage={used}/3").as_str());
    }
    let (status, _, body) = s.call("GET", &q("SELECT Id FROM Account"), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    // Errors carry the header too, and an unlimited day reports a large maximum.
    let open = start(&["--seed", "10", "--daily-limit", "0"]);
    let (status, headers, _) = open.call("GET", &q("SELECT Nope FROM Account"), None).await;
    assert_eq!(status, 400);
    assert_eq!(headers["sforce-limit-info"], "api-usage=1/1000000000");
}

/// Faults: the same seed gives the same statuses, in Salesforce's error shape; changeable at run time.
#[tokio::test]
async fn salesforce_faults_are_deterministic() {
    let spec = "error_rate=0.5,statuses=500|503|429,seed=11";
    let sequence = |s: &Served| {
        let (http, url) = (s.http.clone(), s.url(&q("SELECT Id FROM Case LIMIT 1")));
        async move {
            let mut out = Vec::new();
            for _ in 0..30 {
                let r = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                if status != 200 {
                    let code = body[0]["errorCode"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();
                    out.push(format!("{status} {code}"));
                } else {
                    out.push("200".to_string());
                }
            }
            out
        }
    };
    let a = start(&["--seed", "10", "--faults", spec]);
    let b = start(&["--seed", "10", "--faults", spec]);
    let (first, second) = (sequence(&a).await, sequence(&b).await);
    assert_eq!(first, second, "the same seed gives the same faults");
    assert!(first.contains(&"200".to_string()), "{first:?}");
    assert!(
        first.contains(&"503 SERVER_UNAVAILABLE".to_string()) && first.contains(&"500 UNKNOWN_EXCEPTION".to_string()),
        "{first:?}"
    );
    assert!(
        first.contains(&"403 REQUEST_LIMIT_EXCEEDED".to_string()),
        "an injected 429 answers as Salesforce limits do: {first:?}"
    );
    let (status, _, _) = a.call("PUT", "/_sandbox/faults", Some(json!({"spec": ""}))).await;
    assert_eq!(status, 200);
    assert!(sequence(&a).await.iter().all(|s| s == "200"));
}

/// `--data`: a restart keeps the records, traffic and deletes; the CA file sits beside the data.
#[tokio::test]
async fn salesforce_traffic_state_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("salesforce.db");
    let data_arg = data.to_str().unwrap();
    let s = start(&["--seed", "200", "--data", data_arg]);
    let ca = s.ca_file.clone().unwrap();
    assert!(
        std::path::Path::new(&ca).starts_with(std::fs::canonicalize(dir.path()).unwrap()) || ca.starts_with(dir.path().to_str().unwrap()),
        "{ca}"
    );
    let (_, _, before) = s.call("GET", "/_sandbox/state", None).await;
    assert_eq!(before["flavor"], "salesforce");
    assert_eq!(
        (
            before["objects"]["Contact"]["count"].as_u64(),
            before["objects"]["Account"]["count"].as_u64()
        ),
        (Some(200), Some(20))
    );
    let (status, _, traffic) = s
        .call("POST", "/_sandbox/traffic", Some(json!({"cutover": "2026-11-20T22:00:00Z", "objects": ["Contact", "UserLogin"], "create": 3, "update": 4, "archive": 2, "seed": 5})))
        .await;
    assert_eq!(status, 200);
    let touched = &traffic["objects"]["Contact"];
    assert_eq!(touched["created"].as_array().unwrap().len(), 3);
    assert!(touched["created"][0].as_str().unwrap().starts_with("003"));
    assert!(traffic["objects"]["UserLogin"].is_null(), "users are not created by traffic");
    let archived = touched["archived"].as_array().unwrap().len() as u64;
    assert_eq!(
        count(&s, "SELECT Id FROM Contact WHERE SystemModstamp > 2026-11-20T22:00:00Z").await,
        3 + 4
    );
    let encoded: String =
        form_urlencoded::byte_serialize(b"SELECT Id FROM Contact WHERE IsDeleted = true AND SystemModstamp > 2026-11-20T22:00:00Z")
            .collect();
    let (_, _, deleted) = s.call("GET", &format!("{V}/queryAll?q={encoded}"), None).await;
    assert_eq!(deleted["totalSize"].as_u64(), Some(archived));
    // The replication resources see the same changes (a `+` sent unencoded reads as one).
    let window = "start=2026-11-20T22:00:00+00:00&end=2099-01-01T00:00:00Z";
    let (_, _, updated) = s.call("GET", &format!("{V}/sobjects/Contact/updated/?{window}"), None).await;
    assert_eq!(updated["ids"].as_array().unwrap().len(), 3 + 4, "{updated}");
    let (_, _, removed) = s.call("GET", &format!("{V}/sobjects/Contact/deleted/?{window}"), None).await;
    let removed_ids: Vec<&Value> = removed["deletedRecords"].as_array().unwrap().iter().map(|d| &d["id"]).collect();
    assert_eq!(removed_ids, touched["archived"].as_array().unwrap().iter().collect::<Vec<_>>());
    let (status, _, body) = s.call("GET", &format!("{V}/sobjects/Contact/updated/?start=yesterday"), None).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("INVALID_REPLICATION_DATE")));
    let (_, _, up) = s
        .call(
            "PATCH",
            &format!("{V}/sobjects/Account/External_Id__c/KEEP-1"),
            Some(json!({"Name": "Kept"})),
        )
        .await;
    let (_, _, after) = s.call("GET", "/_sandbox/state", None).await;
    assert_eq!(after["objects"]["Contact"]["count"].as_u64(), Some(200 + 3 - archived));
    assert_ne!(after["objects"]["Contact"]["digest"], before["objects"]["Contact"]["digest"]);
    assert_eq!(after["objects"]["Opportunity"], before["objects"]["Opportunity"]);
    assert!(s.stop().success(), "SIGTERM stops the server cleanly");
    assert!(!std::path::Path::new(&ca).exists(), "the CA file is removed at shutdown");

    let again = start(&["--seed", "200", "--data", data_arg]);
    let (_, _, restarted) = again.call("GET", "/_sandbox/state", None).await;
    assert_eq!(restarted["objects"], after["objects"]);
    let (status, _, kept) = again
        .call("GET", &format!("{V}/sobjects/Account/{}", up["id"].as_str().unwrap()), None)
        .await;
    assert_eq!((status, kept["Name"].as_str()), (200, Some("Kept")));
    let (_, _, new) = again
        .call("POST", &format!("{V}/sobjects/Account"), Some(json!({"Name": "After restart"})))
        .await;
    assert_ne!(new["id"], up["id"], "ids continue after a restart");
    // The same seed without a file gives the same records as the first start.
    let fresh = start(&["--seed", "200"]);
    let (_, _, seeded) = fresh.call("GET", "/_sandbox/state", None).await;
    assert_eq!(seeded["objects"], before["objects"]);
}

/// Every CSV page of a Bulk API 2.0 query job (header row checked), following `Sforce-Locator`.
async fn bulk_rows(s: &Served, job: &str, max: usize, delimiter: u8) -> (Vec<csv::StringRecord>, usize, csv::StringRecord) {
    let (mut locator, mut rows, mut pages) = (String::new(), Vec::new(), 0);
    loop {
        let mut url = format!("{V}/jobs/query/{job}/results?maxRecords={max}");
        if !locator.is_empty() {
            url.push_str(&format!("&locator={locator}"));
        }
        let r = s.http.get(s.url(&url)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "text/csv");
        let n: usize = r.headers()["sforce-numberofrecords"].to_str().unwrap().parse().unwrap();
        let next = r.headers()["sforce-locator"].to_str().unwrap().to_string();
        let text = r.text().await.unwrap();
        let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        let page: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(page.len(), n, "Sforce-NumberOfRecords");
        rows.extend(page);
        pages += 1;
        if next == "null" {
            return (rows, pages, header);
        }
        locator = next;
    }
}

/// Bulk API 2.0 query jobs: complete at once, CSV pages with locators, queryAll, delimiters,
/// aborts, deletes and errors.
#[tokio::test]
async fn salesforce_bulk_query_jobs() {
    let s = start(&["--seed", "2500"]);
    let jobs = format!("{V}/jobs/query");
    let create = |operation: &str, soql: &str| json!({"operation": operation, "query": soql});
    let (status, _, job) = s
        .call("POST", &jobs, Some(create("query", "SELECT Id, Email, Phone FROM Contact")))
        .await;
    assert_eq!((status, job["state"].as_str()), (200, Some("UploadComplete")), "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("750") && id.len() == 18);
    let (_, _, info) = s.call("GET", &format!("{jobs}/{id}"), None).await;
    assert_eq!(
        (info["state"].as_str(), info["numberRecordsProcessed"].as_u64()),
        (Some("JobComplete"), Some(2500))
    );
    let (rows, pages, header) = bulk_rows(&s, &id, 1000, b',').await;
    assert_eq!((rows.len(), pages), (2500, 3));
    assert_eq!(header, csv::StringRecord::from(vec!["Id", "Email", "Phone"]));
    assert_eq!(rows.iter().map(|r| r[0].to_string()).collect::<BTreeSet<_>>().len(), 2500);
    assert!(
        rows.iter().any(|r| r[2].is_empty()) && rows.iter().all(|r| r[1].contains('@')),
        "nulls are empty fields"
    );
    let (_, _, listed) = s.call("GET", &jobs, None).await;
    assert_eq!(listed["records"][0]["id"], id.as_str());

    // queryAll sees a deleted record, query does not; other delimiters and line endings.
    let (_, _, page) = s.call("GET", &q("SELECT Id FROM Contact LIMIT 1"), None).await;
    let gone = page["records"][0]["Id"].as_str().unwrap().to_string();
    assert_eq!(s.call("DELETE", &format!("{V}/sobjects/Contact/{gone}"), None).await.0, 204);
    let soql = "SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true";
    for (operation, expected) in [("query", 0), ("queryAll", 1)] {
        let (_, _, job) = s.call("POST", &jobs, Some(create(operation, soql))).await;
        let (rows, _, _) = bulk_rows(&s, job["id"].as_str().unwrap(), 100, b',').await;
        assert_eq!(rows.len(), expected, "{operation}");
    }
    let (_, _, tabbed) = s
        .call("POST", &jobs, Some(json!({"operation": "query", "query": "SELECT Id, Title FROM Contact LIMIT 5", "columnDelimiter": "TAB", "lineEnding": "CRLF"})))
        .await;
    let r = s
        .http
        .get(s.url(&format!("{jobs}/{}/results", tabbed["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("\"Id\"\t\"Title\"\r\n") && text.matches("\r\n").count() == 6,
        "{text}"
    );

    // Aborted jobs have no results; deleted jobs are gone; refusals.
    let (status, _, aborted) = s.call("PATCH", &format!("{jobs}/{id}"), Some(json!({"state": "Aborted"}))).await;
    assert_eq!((status, aborted["state"].as_str()), (200, Some("Aborted")));
    let (status, _, body) = s.call("GET", &format!("{jobs}/{id}/results"), None).await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (412, Some("JOB_NOT_COMPLETE")));
    assert_eq!(s.call("DELETE", &format!("{jobs}/{id}"), None).await.0, 204);
    assert_eq!(s.call("GET", &format!("{jobs}/{id}"), None).await.0, 404);
    for (body, code) in [
        (create("query", "SELECT COUNT() FROM Contact"), "INVALIDJOB"),
        (create("upsert", "SELECT Id FROM Contact"), "INVALIDJOB"),
        (create("query", "SELECT Id FRM Contact"), "MALFORMED_QUERY"),
        (
            json!({"operation": "query", "query": "SELECT Id FROM Contact", "columnDelimiter": "SPACE"}),
            "INVALIDJOB",
        ),
    ] {
        let (status, _, answer) = s.call("POST", &jobs, Some(body)).await;
        assert_eq!((status, answer[0]["errorCode"].as_str()), (400, Some(code)), "{answer}");
    }
    let (status, _, body) = s
        .call(
            "GET",
            &format!("{jobs}/{}/results?locator=%%%", tabbed["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((status, body[0]["errorCode"].as_str()), (400, Some("INVALID_LOCATOR")));
}
