//! `rollback sandbox serve --flavor hubspot` over real HTTP on 127.0.0.1: auth, paging, batch
//! answers, search, properties, rate limits, faults, simulated traffic, persistence, shutdown.

mod common;

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{Value, json};

use common::{SANDBOX_TOKEN as TOKEN, Served};

fn ids(results: &Value) -> Vec<String> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn hubspot_objects_batch_search_and_properties() {
    let s = Served::start(&["--seed", "300", "--rate-limit", "0"]);

    // Without the token: HubSpot's 401 body.
    let r = s.http.get(s.url("/crm/v3/objects/contacts")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["category"], "INVALID_AUTHENTICATION");

    // Paging through every contact, 100 at a time; `paging` is absent on the last page.
    let (mut after, mut seen, mut pages) = (String::new(), Vec::new(), 0);
    loop {
        let path = format!("/crm/v3/objects/contacts?limit=100&properties=email&properties=phone{after}");
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200);
        pages += 1;
        seen.extend(ids(&page["results"]));
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (300, 3));
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 300);
    // Comma form, default properties, and property values as strings.
    let (_, page) = s.get("/crm/v3/objects/contacts?limit=1&properties=email,lifecyclestage").await;
    let props = &page["results"][0]["properties"];
    assert!(props["email"].is_string() && props["lifecyclestage"].is_string() && props["hs_object_id"].is_string());
    let (_, page) = s.get("/crm/v3/objects/companies?limit=1&archived=False").await;
    assert!(page["results"][0]["properties"]["name"].is_string() && page["results"][0]["properties"]["hs_lastmodifieddate"].is_string());

    // Batch create (201), update (200), read with a missing id (207), too many inputs (400).
    let (status, created) = s
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [{"properties": {"email": "new1@example.com", "firstname": "Ada"}},
                              {"properties": {"email": "new2@example.com", "firstname": "Grace"}}]}),
        )
        .await;
    assert_eq!((status, created["status"].as_str()), (201, Some("COMPLETE")));
    let new_ids = ids(&created["results"]);
    assert_eq!(new_ids.len(), 2);
    let (status, updated) = s
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [{"id": new_ids[0], "properties": {"lastname": "Lovelace"}}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["results"][0]["properties"]["lastname"], "Lovelace");
    let (status, read) = s
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"inputs": [{"id": new_ids[0]}, {"id": "999999"}], "properties": ["lastname"]}),
        )
        .await;
    assert_eq!(status, 207);
    assert_eq!(read["numErrors"], 1);
    assert_eq!(read["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(read["errors"][0]["context"]["ids"][0], "999999");
    let too_many: Vec<Value> = (0..101).map(|i| json!({"id": i.to_string()})).collect();
    let (status, body) = s.post("/crm/v3/objects/contacts/batch/read", json!({"inputs": too_many})).await;
    assert_eq!((status, body["category"].as_str()), (400, Some("VALIDATION_ERROR")));
    let (status, body) = s
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [{"properties": {"shoe_size": "44"}}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");
    // Upsert by a unique property: one existing, one new.
    let (status, upserted) = s
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [{"id": "new2@example.com", "idProperty": "email", "properties": {"lastname": "Hopper"}},
                              {"id": "new3@example.com", "idProperty": "email", "properties": {"firstname": "Katherine"}}]}),
        )
        .await;
    assert_eq!(status, 200);
    let news: Vec<bool> = upserted["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["new"].as_bool().unwrap())
        .collect();
    assert_eq!(news, vec![false, true]);

    // Search: modified since a moment before the writes, sorted, paged by offset.
    let (status, found) = s
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@example.com"},
                                                 {"propertyName": "firstname", "operator": "IN", "values": ["Ada", "Grace", "Katherine"]}]}],
                   "sorts": ["-createdate"], "properties": ["email"], "limit": 2}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["total"], 3);
    assert_eq!(found["paging"]["next"]["after"], "2");
    let since = created["results"][0]["properties"]["createdate"].as_str().unwrap().to_string();
    let since_ms = chrono::DateTime::parse_from_rfc3339(&since).unwrap().timestamp_millis() - 1;
    let (_, recent) = s
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since_ms.to_string()}]}],
                   "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], "limit": 200}),
        )
        .await;
    assert_eq!(recent["total"], 3, "{recent}");
    let (status, _) = s
        .post("/crm/v3/objects/contacts/search", json!({"after": "9950", "limit": 100}))
        .await;
    assert_eq!(status, 400, "paging past 10,000 results is refused");
    let (status, _) = s
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]}),
        )
        .await;
    assert_eq!(status, 400);

    // Archive: 204, then only `archived=true` lists them, with `archivedAt`.
    let r = s
        .http
        .post(s.url("/crm/v3/objects/contacts/batch/archive"))
        .bearer_auth(TOKEN)
        .json(&json!({"inputs": [{"id": new_ids[0]}, {"id": new_ids[1]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, archived) = s.get("/crm/v3/objects/contacts?archived=true&limit=100").await;
    assert_eq!(ids(&archived["results"]), new_ids);
    assert!(archived["results"][0]["archivedAt"].is_string());
    let (status, _) = s.get(&format!("/crm/v3/objects/contacts/{}", new_ids[0])).await;
    assert_eq!(status, 404);

    // Properties API.
    let (_, props) = s.get("/crm/v3/properties/deals").await;
    let names: Vec<&str> = props["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"amount") && names.contains(&"hs_lastmodifieddate"));
    let (status, one) = s.get("/crm/v3/properties/contacts/lastmodifieddate").await;
    assert_eq!((status, one["modificationMetadata"]["readOnlyValue"].as_bool()), (200, Some(true)));

    assert!(s.stop().success(), "SIGTERM stops the server cleanly");
}

#[tokio::test]
async fn hubspot_rate_limits_answer_like_hubspot() {
    let s = Served::start(&["--seed", "10", "--rate-limit", "3"]);
    for remaining in [2, 1, 0] {
        let r = s.http.get(s.url("/crm/v3/objects/deals")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["x-hubspot-ratelimit-remaining"], remaining.to_string().as_str());
        assert_eq!(r.headers()["x-hubspot-ratelimit-max"], "3");
    }
    let (status, body) = s.get("/crm/v3/objects/deals").await;
    assert_eq!(status, 429);
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(body["errorType"], "RATE_LIMIT");
    assert_eq!(body["message"], "You have reached your ten_secondly_rolling limit.");
    // Search has its own per-second limit, with HubSpot's message for it.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(s.post("/crm/v3/objects/deals/search", json!({})).await);
    }
    let refused = statuses.iter().find(|(code, _)| *code == 429).expect("the per-second search limit");
    assert_eq!(refused.1["message"], "You have reached your secondly limit.");

    // The daily limit: no retry will help, and the body says so.
    let daily = Served::start(&["--seed", "10", "--rate-limit", "0", "--daily-limit", "2"]);
    let r = daily
        .http
        .get(daily.url("/crm/v3/objects/deals"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-hubspot-ratelimit-daily-remaining"], "1");
    assert_eq!(daily.get("/crm/v3/objects/deals").await.0, 200);
    let (status, body) = daily.get("/crm/v3/objects/deals").await;
    assert_eq!((status, body["policyName"].as_str()), (429, Some("DAILY")));
}

#[tokio::test]
async fn hubspot_faults_are_deterministic_and_changeable_at_run_time() {
    let spec = "error_rate=0.5,statuses=500|503,seed=11";
    let sequence = |s: &Served| {
        let (http, url) = (s.http.clone(), s.url("/crm/v3/objects/tickets?limit=1"));
        async move {
            let mut out = Vec::new();
            for _ in 0..30 {
                out.push(http.get(&url).bearer_auth(TOKEN).send().await.unwrap().status().as_u16());
            }
            out
        }
    };
    let a = Served::start(&["--seed", "10", "--rate-limit", "0", "--faults", spec]);
    let b = Served::start(&["--seed", "10", "--rate-limit", "0", "--faults", spec]);
    let (first, second) = (sequence(&a).await, sequence(&b).await);
    assert_eq!(first, second, "the same seed gives the same faults");
    assert!(first.contains(&200) && first.iter().any(|s| *s == 500 || *s == 503), "{first:?}");

    // Turned off at run time through the admin endpoint; resets drop connections.
    let r = a
        .http
        .put(a.url("/_sandbox/faults"))
        .bearer_auth(TOKEN)
        .json(&json!({"spec": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(sequence(&a).await.iter().all(|s| *s == 200));
    let r = a
        .http
        .put(a.url("/_sandbox/faults"))
        .bearer_auth(TOKEN)
        .json(&json!({"spec": "reset_rate=1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let reset = a.http.get(a.url("/crm/v3/objects/tickets")).bearer_auth(TOKEN).send().await;
    let broken = match reset {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(broken, "a reset fault breaks the response");
    let r = a
        .http
        .put(a.url("/_sandbox/faults"))
        .bearer_auth(TOKEN)
        .json(&json!({"spec": "error_rat=1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text().await.unwrap().contains("error_rate"),
        "a misspelt fault names the right one"
    );

    // A bad spec on the command line: exit 2 with the reason.
    let out = Command::cargo_bin("rollback")
        .unwrap()
        .args(["sandbox", "serve", "--faults", "latency=fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("latency"));
}

#[tokio::test]
async fn hubspot_traffic_state_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hubspot.db");
    let data_arg = data.to_str().unwrap();
    let s = Served::start(&["--seed", "200", "--rate-limit", "0", "--data", data_arg]);
    let (_, before) = s.get("/_sandbox/state").await;
    assert_eq!(before["objects"]["contacts"]["count"], 200);
    assert_eq!(before["objects"]["deals"]["count"], 40);
    let (status, traffic) = s
        .post(
            "/_sandbox/traffic",
            json!({"cutover": "2020-01-01T00:00:00Z", "objects": ["contacts"], "create": 3, "update": 4, "archive": 2, "seed": 5}),
        )
        .await;
    assert_eq!(status, 200);
    let touched = &traffic["objects"]["contacts"];
    assert_eq!(touched["created"].as_array().unwrap().len(), 3);
    assert_eq!(touched["updated"].as_array().unwrap().len(), 4);
    let (_, after) = s.get("/_sandbox/state").await;
    let archived = touched["archived"].as_array().unwrap().len() as u64;
    assert_eq!(after["objects"]["contacts"]["count"], 200 + 3 - archived);
    assert_eq!(after["objects"]["contacts"]["archived"], archived);
    assert_ne!(after["objects"]["contacts"]["digest"], before["objects"]["contacts"]["digest"]);
    assert_eq!(after["objects"]["deals"], before["objects"]["deals"], "other objects untouched");
    let r = s
        .http
        .put(s.url("/crm/v4/objects/deals/1/associations/default/companies/2"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, associated) = s.get("/crm/v4/objects/deals/1/associations/companies").await;
    assert!(s.stop().success());

    // Restarted on the same file: the same records, not a fresh seed.
    let again = Served::start(&["--seed", "200", "--rate-limit", "0", "--data", data_arg]);
    let (_, restarted) = again.get("/_sandbox/state").await;
    assert_eq!(restarted["objects"], after["objects"]);
    let (_, kept) = again.get("/crm/v4/objects/deals/1/associations/companies").await;
    assert_eq!(kept, associated, "associations survive a restart");
    assert!(kept["results"].as_array().unwrap().iter().any(|r| r["toObjectId"] == 2));
    // The same seed without a file gives the same records as the first start.
    let fresh = Served::start(&["--seed", "200", "--rate-limit", "0"]);
    let (_, seeded) = fresh.get("/_sandbox/state").await;
    assert_eq!(seeded["objects"]["deals"], before["objects"]["deals"]);
}

#[tokio::test]
async fn hubspot_associations_v4() {
    let s = Served::start(&["--seed", "100", "--rate-limit", "0"]);
    // Seeded: most contacts belong to a company; the company lists them back.
    let (status, of_contact) = s.get("/crm/v4/objects/contacts/1/associations/companies").await;
    assert_eq!(status, 200);
    let companies = of_contact["results"].as_array().unwrap();
    if let Some(first) = companies.first() {
        assert_eq!(first["associationTypes"][0]["typeId"], 279);
        let company = first["toObjectId"].as_u64().unwrap();
        let (_, back) = s
            .get(&format!("/crm/v4/objects/companies/{company}/associations/contacts?limit=500"))
            .await;
        assert!(back["results"].as_array().unwrap().iter().any(|r| r["toObjectId"] == 1));
        assert_eq!(back["results"][0]["associationTypes"][0]["typeId"], 280);
    }
    // Associate by default, read in a batch, archive, read again.
    let (status, _) = s
        .post(
            "/crm/v4/associations/deals/companies/batch/associate/default",
            json!({"inputs": [{"from": {"id": "3"}, "to": {"id": "7"}}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, read) = s
        .post(
            "/crm/v4/associations/deals/companies/batch/read",
            json!({"inputs": [{"id": "3"}, {"id": "99999"}]}),
        )
        .await;
    assert_eq!(status, 207, "{read}");
    let to: Vec<u64> = read["results"][0]["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["toObjectId"].as_u64().unwrap())
        .collect();
    assert!(to.contains(&7));
    assert_eq!(read["results"][0]["to"][0]["associationTypes"][0]["typeId"], 341);
    let r = s
        .http
        .post(s.url("/crm/v4/associations/deals/companies/batch/archive"))
        .bearer_auth(TOKEN)
        .json(&json!({"inputs": [{"from": {"id": "3"}, "to": [{"id": "7"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, after) = s.get("/crm/v4/objects/deals/3/associations/companies").await;
    assert!(!after["results"].as_array().unwrap().iter().any(|r| r["toObjectId"] == 7));
    // Single-record forms, and a kind the sandbox does not serve.
    let r = s
        .http
        .put(s.url("/crm/v4/objects/contacts/2/associations/default/companies/5"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, now) = s.get("/crm/v4/objects/companies/5/associations/contacts").await;
    assert!(now["results"].as_array().unwrap().iter().any(|r| r["toObjectId"] == 2));
    let (status, _) = s.get("/crm/v4/objects/tickets/1/associations/deals").await;
    assert_eq!(status, 400);
    let (status, _) = s.get("/crm/v4/objects/contacts/123456/associations/companies").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn hubspot_users_and_roles_for_a_role_swap_freeze() {
    let s = Served::start(&["--seed", "10", "--rate-limit", "0"]);
    let (_, roles) = s.get("/settings/v3/users/roles").await;
    let read_only = roles["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Read only")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .unwrap();
    let (_, users) = s.get("/settings/v3/users/").await;
    let user = users["results"][1].clone();
    let id = user["id"].as_str().unwrap();
    let before = user["roleId"].as_str().unwrap().to_string();
    let r = s
        .http
        .put(s.url(&format!("/settings/v3/users/{id}")))
        .bearer_auth(TOKEN)
        .json(&json!({"roleId": read_only}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, now) = s.get(&format!("/settings/v3/users/{id}")).await;
    assert_eq!(now["roleId"], read_only.as_str());
    let r = s
        .http
        .put(s.url(&format!("/settings/v3/users/{id}")))
        .bearer_auth(TOKEN)
        .json(&json!({"roleId": before}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, _) = s.get("/settings/v3/users/1").await;
    assert_eq!(status, 404);
    let r = s
        .http
        .put(s.url(&format!("/settings/v3/users/{id}")))
        .bearer_auth(TOKEN)
        .json(&json!({"roleId": "42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
