//! The `hubspot` connector over real HTTP against the built-in HubSpot sandbox (started by the
//! test, or by the playbook's `sandbox:` key): backups, deltas, restores, the `user_role` freeze,
//! rate limits and injected faults.

mod common;

use serde_json::{Value, json};

use common::{Run, SANDBOX_TOKEN, Sandbox, Served};

const OBJECTS: [&str; 4] = ["companies", "contacts", "deals", "tickets"];

const PHASES: &str = "
phases:
  backup:
    - backup: { from: crm }
    - verify: { snapshot: latest }
    - verify: { connector: crm, against: latest }
  delta:
    - export_delta: { from: crm, since: cutover }
  restore:
    - restore: { to: crm, snapshot: latest, mode: replace }
  freeze:
    - freeze: { connector: crm }
  unfreeze:
    - unfreeze: { connector: crm }
";

/// A playbook whose connector `crm` reads the sandbox at `base` (token from a file), with
/// `freeze` as its freeze settings.
fn playbook(base: &str, freeze: &str) -> String {
    format!(
        "version: 1
name: hubspot-test
cutover: 2026-01-01T00:00:00Z
connectors:
  crm:
    type: hubspot
    base_url: {base}
    token: ${{file:hubspot.token}}
    objects: [companies, contacts, deals, tickets]
    freeze: {freeze}
{PHASES}"
    )
}

/// A store folder with a playbook for `server`.
fn folder(server: &Served, freeze: &str) -> Sandbox {
    let s = Sandbox::empty();
    s.write("hubspot.token", &format!("{SANDBOX_TOKEN}\n"));
    s.write("rollback.yaml", &playbook(&server.base, freeze));
    s
}

fn latest(s: &Sandbox) -> Value {
    s.manifest(s.snapshot_ids().last().unwrap())
}

async fn state(server: &Served) -> Value {
    let (status, state) = server.get("/_sandbox/state").await;
    assert_eq!(status, 200);
    state["objects"].clone()
}

async fn post(server: &Served, path: &str, body: Value) -> Value {
    let (status, answer) = server.post(path, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// Every file in the store but the (compressed) chunks, as text.
fn store_text(s: &Sandbox) -> String {
    let mut out = String::new();
    let mut dirs = vec![s.path(".rollback")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.ends_with("chunks") {
                dirs.push(path);
            } else if path.is_file() {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// A backup holds every live record of each object, as many as the sandbox counts (archived
/// records are HubSpot's deletes, left out), proves itself against the live CRM, and the token
/// appears nowhere: not in the output even at debug level, nor in the manifests or the journal.
#[tokio::test]
async fn backup_counts_equal_the_sandbox() {
    let server = Served::start(&["--seed", "300", "--rate-limit", "0"]);
    post(
        &server,
        "/crm/v3/objects/contacts/batch/archive",
        json!({"inputs": [{"id": "1"}, {"id": "2"}]}),
    )
    .await;
    let s = folder(&server, "{ method: manual }");
    s.run(&["-v", "execute", "--phase", "backup"])
        .ok()
        .says("contacts 298")
        .says("equals snapshot")
        .never_says(SANDBOX_TOKEN);
    let manifest = latest(&s);
    let live = state(&server).await;
    assert_eq!(live["contacts"]["archived"], 2);
    for object in OBJECTS {
        let entry = &manifest["objects"][object];
        assert_eq!(entry["count"], live[object]["count"], "{object}");
        assert_eq!(entry["deleted"], 0, "{object}");
    }
    assert_eq!(manifest["objects"]["companies"]["count"], 30);
    assert_eq!(manifest["connector_type"], "hubspot");
    let fields = manifest["schema"]["objects"]["contacts"]["fields"].as_array().unwrap();
    assert!(fields.contains(&json!("email")) && fields.contains(&json!("createdate")));
    assert!(!fields.contains(&json!("lastmodifieddate")), "every write changes it: not a field");
    assert!(!store_text(&s).contains(SANDBOX_TOKEN), "the token is in the store");
    s.run(&["verify", "--connector", "crm"]).ok().says("equals snapshot");
}

/// Users' changes after cutover (the sandbox's simulated traffic) come out of `export_delta` as
/// exactly that many created, changed and deleted records. Without a full backup to compare with,
/// the search on the modified date finds the created and changed records and a list of the
/// archived ones adds the deletions, flagged deleted.
#[tokio::test]
async fn delta_counts_the_simulated_traffic() {
    let server = Served::start(&["--seed", "300", "--rate-limit", "0"]);
    let s = folder(&server, "{ method: manual }");
    s.run(&["execute", "--phase", "backup"]).ok();
    let traffic = json!({"cutover": "2026-01-01T00:00:00Z", "objects": ["contacts", "deals"],
                         "create": 3, "update": 4, "archive": 2, "seed": 5});
    post(&server, "/_sandbox/traffic", traffic).await;
    s.run(&["execute", "--phase", "delta"])
        .ok()
        .says("contacts +3 ~4 -2")
        .says("deals +3 ~4 -2")
        .says("companies +0 ~0 -0");

    let fresh = folder(&server, "{ method: manual }");
    fresh.run(&["execute", "--phase", "delta"]).ok().says("no full snapshot");
    let delta = latest(&fresh);
    assert_eq!(delta["kind"], "delta");
    for object in ["contacts", "deals"] {
        let entry = &delta["objects"][object];
        assert_eq!(entry["count"], 9, "{object}: 3 created, 4 changed, 2 archived");
        assert_eq!(entry["deleted"], 2, "{object}");
        assert_eq!(entry["delta"]["changed"], 9, "{object}");
    }
    assert_eq!(delta["objects"]["tickets"]["count"], 0);
}

/// An export since a time pages past HubSpot's 10,000-result search cap by moving the search's
/// lower bound: every one of 10,500 records comes out once.
#[tokio::test]
async fn search_pages_past_the_ten_thousand_cap() {
    let server = Served::start(&["--seed", "10500", "--rate-limit", "0"]);
    let s = folder(&server, "{ method: manual }");
    let text = s.read("rollback.yaml").replace(
        "export_delta: { from: crm, since: cutover }",
        "export_delta: { from: crm, since: \"2020-01-01T00:00:00Z\", objects: [contacts] }",
    );
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "delta"]).ok().says("contacts +0 ~10500 -0");
    assert_eq!(
        latest(&s)["objects"]["contacts"]["count"],
        10500,
        "no record twice (a repeated id fails the step)"
    );
}

/// After damage (changed and cleared properties, records created since the backup) a restore
/// writes the snapshot's values back by id and archives the extra records; the live CRM then
/// equals the snapshot and a new backup has the same root digest. Records archived since the
/// backup cannot come back under their ids: the restore names them and says where they are.
#[tokio::test]
async fn restore_after_damage_proves_itself() {
    let server = Served::start(&["--seed", "300", "--rate-limit", "0"]);
    let s = folder(&server, "{ method: manual }");
    s.run(&["execute", "--phase", "backup"]).ok();
    let first = latest(&s)["root_digest"].clone();
    let (_, before) = server.get("/crm/v3/objects/contacts/5?properties=firstname,phone").await;
    post(
        &server,
        "/crm/v3/objects/contacts/batch/update",
        json!({"inputs": [{"id": "5", "properties": {"firstname": "Damaged", "phone": ""}}]}),
    )
    .await;
    post(
        &server,
        "/crm/v3/objects/companies/batch/update",
        json!({"inputs": [{"id": "3", "properties": {"name": "Renamed"}}]}),
    )
    .await;
    let created = post(
        &server,
        "/crm/v3/objects/contacts/batch/create",
        json!({"inputs": [{"properties": {"email": "late1@example.com"}}, {"properties": {"email": "late2@example.com"}}]}),
    )
    .await;
    s.run(&["verify", "--connector", "crm"]).exits(1).says("differs").says("2 added");
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("contacts +0 ~1 -2")
        .says("companies +0 ~1 -0")
        .says("`crm` equals snapshot");
    let (_, after) = server.get("/crm/v3/objects/contacts/5?properties=firstname,phone").await;
    assert_eq!(after["properties"]["firstname"], before["properties"]["firstname"]);
    assert_eq!(after["properties"]["phone"], before["properties"]["phone"]);
    let new_id = created["results"][0]["id"].as_str().unwrap();
    let (status, _) = server.get(&format!("/crm/v3/objects/contacts/{new_id}")).await;
    assert_eq!(status, 404, "the record created after the backup is archived");
    s.run(&["execute", "--phase", "backup"]).ok();
    assert_eq!(
        latest(&s)["root_digest"],
        first,
        "backup → damage → restore → backup: the same digest"
    );

    post(
        &server,
        "/crm/v3/objects/contacts/batch/archive",
        json!({"inputs": [{"id": "7"}, {"id": "8"}]}),
    )
    .await;
    s.run(&["execute", "--phase", "restore"])
        .exits(1)
        .says("2 in HubSpot's recycle bin (archived): `7`, `8`")
        .says("nothing was created for them")
        .says("Restore records");
    assert_eq!(state(&server).await["contacts"]["count"], 298, "no copies under new ids");
}

async fn roles(server: &Served) -> Vec<(String, String, Option<String>, bool)> {
    let (_, users) = server.get("/settings/v3/users/").await;
    users["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["email"].as_str().unwrap().to_string(),
                u["roleId"].as_str().map(str::to_string),
                u["superAdmin"] == true,
            )
        })
        .collect()
}

/// `user_role` moves every covered user to the read-only role and the write probe confirms it;
/// unfreeze gives each user back exactly the role it had (none included), leaving users who were
/// read-only before alone. A super admin, whom no role binds, stops the freeze before it changes
/// anything, and an unknown role is named with the account's roles.
#[tokio::test]
async fn user_role_freeze_and_unfreeze() {
    let server = Served::start(&["--seed", "50", "--rate-limit", "0"]);
    let users = roles(&server).await;
    let admin = users.iter().find(|u| u.3).unwrap().1.clone();
    let plain: Vec<&String> = users.iter().filter(|u| !u.3).map(|u| &u.0).collect();
    assert!(plain.len() >= 4);
    // Prior roles to give back: a super admin role and read only already; and a user with none.
    server
        .call(
            "PUT",
            &format!("/settings/v3/users/{}", plain[0]),
            Some(json!({"roleId": "100001"})),
        )
        .await;
    server
        .call(
            "PUT",
            &format!("/settings/v3/users/{}", plain[1]),
            Some(json!({"roleId": "100003"})),
        )
        .await;
    server
        .call("PUT", &format!("/settings/v3/users/{}", plain[2]), Some(json!({"roleId": null})))
        .await;
    let prior = roles(&server).await;

    let s = folder(&server, "{ method: user_role, read_only_role: Read only }");
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says(&format!("`{admin}` is a super admin"));
    assert_eq!(roles(&server).await, prior, "nothing changed");

    s.write(
        "rollback.yaml",
        &playbook(&server.base, "{ method: user_role, read_only_role: Read onlee }"),
    );
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says("no role `Read onlee`")
        .says("`Read only` (100003)");

    // A user without a role holds permissions of their own, which a role would replace.
    let roleless = prior.iter().find(|u| u.0 == *plain[2]).unwrap().1.clone();
    let freeze = format!("{{ method: user_role, read_only_role: Read only, exclude_users: [{admin}] }}");
    s.write("rollback.yaml", &playbook(&server.base, &freeze));
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says(&format!("`{roleless}` has no role"))
        .says("hint: give them a role in HubSpot first, or list them in `exclude_users`");
    assert_eq!(roles(&server).await, prior, "nothing changed");

    let freeze = format!("{{ method: user_role, read_only_role: Read only, exclude_users: [{admin}, {roleless}] }}");
    s.write("rollback.yaml", &playbook(&server.base, &freeze));
    s.run(&["execute", "--phase", "freeze"])
        .ok()
        .says("frozen (user_role); a user write is refused");
    for (id, email, role, admin) in roles(&server).await {
        if !admin && email != roleless {
            assert_eq!(role.as_deref(), Some("100003"), "user {id}");
        }
    }
    s.run(&["status"]).ok().says("FROZEN");
    s.run(&["execute", "--phase", "freeze"]).ok().says("already frozen");
    // An admin moves one user to another role during the freeze: that choice is kept.
    server
        .call(
            "PUT",
            &format!("/settings/v3/users/{}", plain[3]),
            Some(json!({"roleId": "100001"})),
        )
        .await;
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("a user write goes through");
    let expected: Vec<_> = prior
        .iter()
        .map(|u| match u.0 == *plain[3] {
            true => (u.0.clone(), u.1.clone(), Some("100001".to_string()), u.3),
            false => u.clone(),
        })
        .collect();
    assert_eq!(roles(&server).await, expected, "every role as before, but the one the admin chose");
}

/// With the sandbox allowing 4 requests per ten seconds, a backup still completes: the client reads
/// HubSpot's rate-limit headers and waits for the next window instead of failing.
#[tokio::test]
async fn rate_limited_backup_completes() {
    let server = Served::start(&["--seed", "200", "--rate-limit", "4"]);
    let s = folder(&server, "{ method: manual }");
    let text = s
        .read("rollback.yaml")
        .replace("    - verify: { connector: crm, against: latest }\n", "");
    s.write("rollback.yaml", &text);
    s.run(&["-v", "execute", "--phase", "backup"])
        .ok()
        .says("rate limit nearly used; pausing")
        .says("contacts 200");
    let live = state(&server).await;
    for object in OBJECTS {
        assert_eq!(latest(&s)["objects"][object]["count"], live[object]["count"], "{object}");
    }
}

/// Injected faults (a third of the calls failing with 500, 502, 503 or 429, some connections
/// reset) only slow a backup and a restore down: every call is retried, and both prove themselves.
#[tokio::test]
async fn injected_faults_are_retried() {
    let server = Served::start(&["--seed", "300", "--rate-limit", "0"]);
    let s = folder(&server, "{ method: manual }");
    let faults = json!({"spec": "error_rate=0.3,statuses=500|502|503|429,reset_rate=0.05,seed=7"});
    server.call("PUT", "/_sandbox/faults", Some(faults.clone())).await;
    s.run(&["-v", "execute", "--phase", "backup"])
        .ok()
        .says("HubSpot asked to retry")
        .says("HubSpot call failed")
        .says("contacts 300");
    server.call("PUT", "/_sandbox/faults", Some(json!({"spec": ""}))).await;
    let update: Vec<Value> = (10..40)
        .map(|id| json!({"id": id.to_string(), "properties": {"lastname": "Changed"}}))
        .collect();
    post(&server, "/crm/v3/objects/contacts/batch/update", json!({"inputs": update})).await;
    server.call("PUT", "/_sandbox/faults", Some(faults)).await;
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("contacts +0 ~30 -0")
        .says("`crm` equals snapshot");
}

/// `sandbox: { flavor: hubspot, seed }` in an environment: the tool starts its own sandbox for the
/// run (no token needed) and keeps its records in the store folder, so later runs (and a sandbox
/// served from that file meanwhile) see the same data, a freeze included; a dry run leaves no
/// file. A `port` that is taken is named.
#[tokio::test]
async fn sandbox_key_starts_the_server_for_the_run() {
    let s = Sandbox::empty();
    let text = format!(
        "version: 1
name: hubspot-sandboxed
cutover: 2026-01-01T00:00:00Z
connectors:
  crm:
    type: hubspot
    token: ${{env:ROLLBACK_TEST_UNSET_HUBSPOT_TOKEN}}
    objects: [companies, contacts, deals, tickets]
    freeze: {{ method: user_role, read_only_role: Read only, exclude_users: [maria.lopez@example.com] }}
environments:
  sandbox:
    connectors:
      crm: {{ sandbox: {{ flavor: hubspot, seed: 200 }} }}
{PHASES}"
    );
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "backup"])
        .exits(2)
        .says("ROLLBACK_TEST_UNSET_HUBSPOT_TOKEN");
    let data = s.path(".rollback/sandbox/crm.db");
    s.run(&["execute", "--env", "sandbox", "--phase", "delta", "--dry-run"])
        .ok()
        .says("contacts +0 ~0 -0");
    assert!(!data.exists(), "a dry run serves the seeded records from memory");
    s.run(&["execute", "--env", "sandbox", "--phase", "backup"])
        .ok()
        .says("contacts 200")
        .says("companies 20");
    assert!(data.is_file(), "the sandbox keeps its records in the store folder");

    // Users at work between runs, on a sandbox served from the same file.
    let data_arg = data.display().to_string();
    let between = Served::start(&["--rate-limit", "0", "--data", &data_arg]);
    let (_, users) = between.get("/settings/v3/users/").await;
    let admin = users["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["superAdmin"] == true)
        .unwrap();
    assert_eq!(admin["email"], "maria.lopez@example.com", "the playbook excludes the super admin");
    post(
        &between,
        "/_sandbox/traffic",
        json!({"cutover": "2026-01-01T00:00:00Z", "objects": ["contacts"], "create": 2, "update": 3, "archive": 1}),
    )
    .await;
    assert!(between.stop().success());

    s.run(&["execute", "--env", "sandbox", "--phase", "delta"])
        .ok()
        .says("contacts +2 ~3 -1");
    s.run(&["execute", "--env", "sandbox", "--phase", "freeze"])
        .ok()
        .says("a user write is refused");
    let frozen = Served::start(&["--rate-limit", "0", "--data", &data_arg]);
    let (_, users) = frozen.get("/settings/v3/users/").await;
    let read_only = users["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["roleId"] == "100003")
        .count();
    assert_eq!(
        read_only,
        users["results"].as_array().unwrap().len() - 1,
        "the freeze is kept in the file"
    );
    assert!(frozen.stop().success());
    s.run(&["execute", "--env", "sandbox", "--phase", "unfreeze"])
        .ok()
        .says("a user write goes through");

    // A port of our choosing, and a clear error while it is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    s.write(
        "rollback.yaml",
        &text.replace("seed: 200 }", &format!("seed: 200, port: {port} }}")),
    );
    s.run(&["execute", "--env", "sandbox", "--phase", "backup"])
        .exits(1)
        .says(&format!("is port {port} free?"));
    drop(taken);
    s.run(&["execute", "--env", "sandbox", "--phase", "backup"])
        .ok()
        .says("contacts 201");
}

/// A hubspot connector needs a token unless a sandbox serves it; a sandbox's flavor must be the
/// connector's CRM (a salesforce connector's is served over HTTPS), and table connectors cannot
/// have one.
#[test]
fn sandbox_and_token_are_validated() {
    let s = Sandbox::empty();
    let with = |crm: &str| format!("version: 1\nname: v\nconnectors:\n  crm:\n{crm}\nphases:\n  backup:\n    - backup: {{ from: crm }}\n");
    s.write("rollback.yaml", &with("    type: hubspot\n    objects: [contacts]"));
    s.run(&["validate"]).exits(2).says("needs `token`");
    s.write(
        "rollback.yaml",
        &with("    type: hubspot\n    objects: [contacts]\n    sandbox: { flavor: hubspot }"),
    );
    s.run(&["validate"]).ok();
    s.write(
        "rollback.yaml",
        &with("    type: hubspot\n    objects: [contacts]\n    sandbox: { flavor: salesforce }"),
    );
    s.run(&["validate"])
        .exits(2)
        .says("sandbox flavor `salesforce` serves another CRM's API")
        .says("flavor: hubspot");
    s.write(
        "rollback.yaml",
        &with("    type: postgres\n    url: postgres://x/y\n    objects: [contacts]\n    sandbox: { flavor: hubspot }"),
    );
    s.run(&["validate"]).exits(2).says("which connector type `postgres` does not read");
    s.write(
        "rollback.yaml",
        &with("    type: salesforce\n    objects: [Contact]\n    sandbox: { flavor: salesforce, seed: 20 }"),
    );
    s.run(&["execute", "--phase", "backup"]).ok().says("Contact 20");
}

/// The quickstart's new CRM turned into HubSpot, served in environment `sandbox` by the tool's
/// own sandbox: the drill takes the sandbox's records as the migrated ones, plays the users
/// through its admin endpoint, and proves the rollback like any other drill, twice in a row on
/// the same sandbox data. Without a sandbox, the drill refuses before it touches anything.
#[test]
fn drill_with_a_hubspot_sandbox_as_the_new_crm() {
    let s = Sandbox::init(150);
    let text = s.read("rollback.yaml");
    let start = text.find("  newcrm:").unwrap();
    let end = start + text[start..].find("\nnotify:").unwrap();
    let hubspot = "  newcrm:
    type: hubspot
    token: ${env:ROLLBACK_TEST_DRILL_HUBSPOT_TOKEN}
    objects: [companies, contacts, deals]
    freeze: { method: user_role, read_only_role: Read only, exclude_users: [maria.lopez@example.com] }
";
    let sandboxed = format!(
        "{}{hubspot}\nenvironments:\n  sandbox:\n    connectors:\n      newcrm: {{ sandbox: {{ flavor: hubspot, seed: 200 }} }}\n{}",
        &text[..start],
        &text[end..]
    );
    s.write("rollback.yaml", &sandboxed);
    for round in 0..2 {
        let out = s.run(&["drill", "--yes", "--traffic", "4", "--format", "json"]);
        assert_eq!(out.code(), 0, "round {round}: {}\n{}", out.stdout(), out.stderr());
        let report: Value = serde_json::from_str(&out.stdout()).unwrap();
        let proofs = report["proofs"].as_array().unwrap();
        assert!(proofs.iter().all(|p| p["ok"] == true), "round {round}: {proofs:?}");
        for object in ["companies", "contacts", "deals"] {
            assert_eq!(
                report["traffic"][object],
                json!({"created": 4, "changed": 4, "deleted": 4}),
                "round {round}: {object}"
            );
        }
        assert!(report["notes"][0].as_str().unwrap().contains("its admin endpoint played the users"));
    }
    assert!(s.path(".rollback/sandbox/newcrm.db").is_file());
    s.run(&["drill", "--yes"])
        .ok()
        .says("note: `newcrm` is a sandbox")
        .says("delta holds the simulated traffic")
        .says("drill passed");

    // Real HubSpot (no sandbox): refused before the old CRM is frozen.
    let real = format!("{}{hubspot}{}", &text[..start], &text[end..]);
    s.write("rollback.yaml", &real);
    let before = s.snapshot_ids().len();
    let out = Run(s
        .cmd()
        .env("ROLLBACK_TEST_DRILL_HUBSPOT_TOKEN", "pat-na1-not-a-real-token")
        .args(["drill", "--yes"])
        .output()
        .unwrap());
    out.exits(2)
        .says("gives new records ids of its own")
        .says("sandbox: { flavor: hubspot }");
    assert_eq!(s.snapshot_ids().len(), before, "nothing was backed up");
    s.run(&["status"]).ok().never_says("connector `legacy`");
}
