//! The `salesforce` connector over real HTTPS against the built-in Salesforce sandbox (started by
//! the test, whose CA the playbook trusts with `tls: { root_cert }`, or by the playbook's
//! `sandbox:` key): backups, deltas, restores, the `freeze_users` freeze, dry runs, limits,
//! injected faults and bad settings.

mod common;

use serde_json::{Value, json};

use common::{SANDBOX_TOKEN, Sandbox, Served};

const OBJECTS: [&str; 4] = ["Account", "Contact", "Opportunity", "Case"];
const V: &str = "/services/data/v60.0";

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

fn start(seed: &str, more: &[&str]) -> Served {
    let mut args = vec!["--flavor", "salesforce", "--seed", seed];
    args.extend_from_slice(more);
    Served::start(&args)
}

/// A playbook whose connector `crm` reads the sandbox at `base` (token from a file, the
/// sandbox's CA trusted), with `freeze` as its freeze settings.
fn playbook(server: &Served, freeze: &str) -> String {
    format!(
        "version: 1
name: salesforce-test
cutover: 2026-01-01T00:00:00Z
connectors:
  crm:
    type: salesforce
    instance_url: {}
    token: ${{file:salesforce.token}}
    tls: {{ root_cert: {} }}
    objects: [Account, Contact, Opportunity, Case]
    freeze: {freeze}
{PHASES}",
        server.base,
        server.ca_file.as_deref().expect("the Salesforce sandbox names its CA")
    )
}

/// A store folder with a playbook for `server`.
fn folder(server: &Served, freeze: &str) -> Sandbox {
    let s = Sandbox::empty();
    s.write("salesforce.token", &format!("{SANDBOX_TOKEN}\n"));
    s.write("rollback.yaml", &playbook(server, freeze));
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

/// Any call that must succeed; its body.
async fn call(server: &Served, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, _, answer) = server.call(method, path, body).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

/// Every row of a SOQL query (small results: one page).
async fn query(server: &Served, soql: &str) -> Vec<Value> {
    let encoded: String = form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    let page = call(server, "GET", &format!("{V}/query?q={encoded}"), None).await;
    assert_eq!(page["done"], true, "{page}");
    page["records"].as_array().unwrap().clone()
}

async fn contact_ids(server: &Served, n: usize) -> Vec<String> {
    query(server, &format!("SELECT Id FROM Contact ORDER BY Id LIMIT {n}"))
        .await
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect()
}

/// Deletes rows through the API, as a user would (they go to the Recycle Bin).
async fn delete(server: &Served, ids: &[String]) {
    let answer = call(server, "DELETE", &format!("{V}/composite/sobjects?ids={}", ids.join(",")), None).await;
    assert!(answer.as_array().unwrap().iter().all(|r| r["success"] == true), "{answer}");
}

/// A plan notes that a backup holds only what the token's user can see. A backup (a `queryAll`
/// of the rows not deleted) holds every live row of each object, as many as the sandbox counts
/// (deleted rows are in the Recycle Bin, left out), with 18-character ids and the writable fields but not the
/// modified stamp, proves itself against the live org, and the token appears nowhere: not in the
/// output even at debug level, nor in the store.
#[tokio::test]
async fn backup_counts_equal_the_sandbox() {
    let server = start("300", &[]);
    delete(&server, &contact_ids(&server, 2).await).await;
    let s = folder(&server, "{ method: manual }");
    s.run(&["-v", "execute", "--phase", "backup"])
        .ok()
        .says("Contact 298")
        .says("equals snapshot")
        .never_says(SANDBOX_TOKEN);
    let manifest = latest(&s);
    let live = state(&server).await;
    assert_eq!(live["Contact"]["archived"], 2);
    for object in OBJECTS {
        let entry = &manifest["objects"][object];
        assert_eq!(entry["count"], live[object]["count"], "{object}");
        assert_eq!(entry["deleted"], 0, "{object}");
    }
    assert_eq!(manifest["objects"]["Account"]["count"], 30);
    assert_eq!(manifest["connector_type"], "salesforce");
    let schema = &manifest["schema"]["objects"]["Contact"];
    let fields = schema["fields"].as_array().unwrap();
    assert!(fields.contains(&json!("LastName")) && fields.contains(&json!("CreatedDate")));
    assert!(!fields.contains(&json!("SystemModstamp")), "every write changes it: not a field");
    assert_eq!(schema["modified"], "SystemModstamp");
    assert!(
        schema["foreign_keys"]
            .as_array()
            .unwrap()
            .contains(&json!({"column": "AccountId", "table": "Account"}))
    );
    let mut text = String::new();
    for entry in walk(&s.path(".rollback")) {
        text.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    assert!(!text.contains(SANDBOX_TOKEN), "the token is in the store");
    s.run(&["verify", "--connector", "crm"]).ok().says("equals snapshot");
    s.run(&["plan", "--phase", "backup"])
        .ok()
        .says("are queryable")
        .says("a backup holds only the records the token's user can see")
        .says("\"View All Data\"");
}

/// Every file under `dir` but the (compressed) chunks.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.ends_with("chunks") {
                dirs.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// Users' changes after cutover (the sandbox's simulated traffic) come out of `export_delta` as
/// exactly that many created, changed and deleted records. Without a full backup to compare with,
/// a `queryAll` on SystemModstamp finds the created, changed and deleted rows, the deleted ones
/// flagged.
#[tokio::test]
async fn delta_counts_the_simulated_traffic() {
    let server = start("300", &[]);
    let s = folder(&server, "{ method: manual }");
    s.run(&["execute", "--phase", "backup"]).ok();
    let traffic = json!({"cutover": "2026-01-01T00:00:00Z", "objects": ["Contact", "Opportunity"],
                         "create": 3, "update": 4, "archive": 2, "seed": 5});
    let (status, _) = server.post("/_sandbox/traffic", traffic).await;
    assert_eq!(status, 200);
    s.run(&["execute", "--phase", "delta"])
        .ok()
        .says("Contact +3 ~4 -2")
        .says("Opportunity +3 ~4 -2")
        .says("Account +0 ~0 -0");

    let fresh = folder(&server, "{ method: manual }");
    fresh.run(&["execute", "--phase", "delta"]).ok().says("no full snapshot");
    let delta = latest(&fresh);
    assert_eq!(delta["kind"], "delta");
    for object in ["Contact", "Opportunity"] {
        let entry = &delta["objects"][object];
        assert_eq!(entry["count"], 9, "{object}: 3 created, 4 changed, 2 deleted");
        assert_eq!(entry["deleted"], 2, "{object}");
    }
    assert_eq!(delta["objects"]["Case"]["count"], 0);
}

/// After damage (a changed and a cleared field, a renamed account, rows created since the
/// backup) a restore writes the snapshot's values back by id and deletes the extra rows; the live
/// org then equals the snapshot and a new backup has the same root digest. Rows deleted since the
/// backup cannot come back under their ids through the API: the restore names them, says they
/// are in the Recycle Bin, and creates nothing.
#[tokio::test]
async fn restore_after_damage_proves_itself() {
    let server = start("300", &[]);
    let s = folder(&server, "{ method: manual }");
    s.run(&["execute", "--phase", "backup"]).ok();
    let first = latest(&s)["root_digest"].clone();
    let ids = contact_ids(&server, 8).await;
    let titled = query(&server, "SELECT Id FROM Contact WHERE Title != null ORDER BY Id LIMIT 1").await;
    let path = format!("{V}/sobjects/Contact/{}", titled[0]["Id"].as_str().unwrap());
    let before = call(&server, "GET", &path, None).await;
    assert!(before["Title"].is_string(), "the cleared field had a value: {before}");
    call(&server, "PATCH", &path, Some(json!({"FirstName": "Damaged", "Title": null}))).await;
    let account = query(&server, "SELECT Id FROM Account ORDER BY Id LIMIT 1").await[0]["Id"].clone();
    call(
        &server,
        "PATCH",
        &format!("{V}/composite/sobjects"),
        Some(json!({"records": [{"attributes": {"type": "Account"}, "id": account, "Name": "Renamed"}]})),
    )
    .await;
    let created = call(
        &server,
        "POST",
        &format!("{V}/composite/sobjects"),
        Some(json!({"records": [{"attributes": {"type": "Contact"}, "LastName": "Late1"},
                                {"attributes": {"type": "Contact"}, "LastName": "Late2"}]})),
    )
    .await;
    s.run(&["verify", "--connector", "crm"]).exits(1).says("differs").says("2 added");
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("Contact +0 ~1 -2")
        .says("Account +0 ~1 -0")
        .says("`crm` equals snapshot");
    let after = call(&server, "GET", &path, None).await;
    for field in ["FirstName", "Title", "Phone", "LastName"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    let new_id = created[0]["id"].as_str().unwrap();
    let (status, _, gone) = server.call("GET", &format!("{V}/sobjects/Contact/{new_id}"), None).await;
    assert_eq!((status, gone[0]["errorCode"].as_str()), (404, Some("ENTITY_IS_DELETED")));
    s.run(&["execute", "--phase", "backup"]).ok();
    assert_eq!(
        latest(&s)["root_digest"],
        first,
        "backup → damage → restore → backup: the same digest"
    );

    delete(&server, &ids[6..8]).await;
    s.run(&["execute", "--phase", "restore"])
        .exits(1)
        .says(&format!("2 in Salesforce's Recycle Bin (deleted): `{}`, `{}`", ids[6], ids[7]))
        .says("nothing was created for them")
        .says("Recycle Bin → Undelete");
    assert_eq!(state(&server).await["Contact"]["count"], 298, "no copies under new ids");
}

/// An export longer than a query page (Salesforce's 2,000 rows): 4,500 contacts come in three
/// pages through `nextRecordsUrl`, every one in the backup; damage on the first and the last page
/// is restored, the org equals the snapshot, and a new backup has the same root digest.
#[tokio::test]
async fn export_spans_several_query_pages() {
    let server = start("4500", &[]);
    let s = folder(&server, "{ method: manual }");
    s.run(&["execute", "--phase", "backup"])
        .ok()
        .says("Contact 4500")
        .says("equals snapshot");
    let manifest = latest(&s);
    let live = state(&server).await;
    assert_eq!(manifest["objects"]["Contact"]["count"], 4500);
    assert_eq!(manifest["objects"]["Opportunity"]["count"], live["Opportunity"]["count"]);
    let first = manifest["root_digest"].clone();

    let last = query(&server, "SELECT Id FROM Contact ORDER BY Id DESC LIMIT 1").await[0]["Id"].clone();
    let first_id = contact_ids(&server, 1).await[0].clone();
    let records = json!({"records": [{"attributes": {"type": "Contact"}, "id": first_id, "LastName": "Changed"},
                                     {"attributes": {"type": "Contact"}, "id": last, "LastName": "Changed"}]});
    call(&server, "PATCH", &format!("{V}/composite/sobjects"), Some(records)).await;
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("Contact +0 ~2 -0")
        .says("`crm` equals snapshot");
    s.run(&["execute", "--phase", "backup"]).ok().says("Contact 4500");
    assert_eq!(latest(&s)["root_digest"], first, "backup → restore → backup: the same digest");
}

/// An 18-digit currency value (more digits than an f64 holds) is backed up, compared and restored
/// digit for digit: a change in its last digit, which an f64 would not see, is found by verify and
/// undone by a restore, after which a backup has the first one's root digest.
#[tokio::test]
async fn long_numbers_stay_exact() {
    let server = start("50", &[]);
    let s = folder(&server, "{ method: manual }");
    let account = query(&server, "SELECT Id FROM Account ORDER BY Id LIMIT 1").await[0]["Id"].clone();
    let path = format!("{V}/sobjects/Account/{}", account.as_str().unwrap());
    call(&server, "PATCH", &path, Some(json!({"AnnualRevenue": "1234567890123456.78"}))).await;
    s.run(&["execute", "--phase", "backup"]).ok().says("equals snapshot");
    let first = latest(&s)["root_digest"].clone();
    call(&server, "PATCH", &path, Some(json!({"AnnualRevenue": "1234567890123456.79"}))).await;
    s.run(&["verify", "--connector", "crm"]).exits(1).says("differs");
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("Account +0 ~1 -0")
        .says("`crm` equals snapshot");
    s.run(&["execute", "--phase", "backup"]).ok();
    assert_eq!(latest(&s)["root_digest"], first, "the restore wrote every digit back");
}

/// `(user id, username, login id, frozen)` of every user.
async fn logins(server: &Served) -> Vec<(String, String, String, bool)> {
    let users = query(server, "SELECT Id, Username FROM User ORDER BY Id").await;
    let logins = query(server, "SELECT Id, UserId, IsFrozen FROM UserLogin").await;
    users
        .iter()
        .map(|u| {
            let id = u["Id"].as_str().unwrap().to_string();
            let login = logins.iter().find(|l| l["UserId"] == u["Id"]).unwrap();
            (
                id,
                u["Username"].as_str().unwrap().to_string(),
                login["Id"].as_str().unwrap().to_string(),
                login["IsFrozen"] == true,
            )
        })
        .collect()
}

fn receipt(s: &Sandbox) -> Value {
    let run = s.run(&["runs", "show", "latest", "--format", "json"]).ok();
    let run: Value = serde_json::from_str(&run.stdout()).unwrap();
    run["steps"][0]["detail"]["receipt"].clone()
}

/// `freeze_users` freezes every active Standard user's login (not a portal user's) but the
/// integration user's (the token's own, from userinfo), and the probe reads them back; the receipt names exactly the users it
/// froze, so unfreeze leaves a user frozen before alone. Naming the integration user, or a user
/// the org does not have (in `users` or `exclude_users`), changes nothing. A plan checks the right to freeze by reading only.
#[tokio::test]
async fn freeze_users_and_unfreeze() {
    let server = start("50", &[]);
    let me = call(&server, "GET", "/services/oauth2/userinfo", None).await;
    let prior = logins(&server).await;
    assert_eq!(prior.len(), 6);
    let integration = prior.iter().find(|u| u.0 == me["user_id"]).unwrap().clone();
    // One user an admin froze before the rollback.
    let (before_frozen, before_login) = (prior[3].1.clone(), prior[3].2.clone());
    call(
        &server,
        "PATCH",
        &format!("{V}/sobjects/UserLogin/{before_login}"),
        Some(json!({"IsFrozen": true})),
    )
    .await;
    let prior = logins(&server).await;

    let s = folder(&server, &format!("{{ method: freeze_users, users: [{}] }}", integration.1));
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says("the integration user")
        .says("hint: remove it from `users`");
    s.write(
        "rollback.yaml",
        &playbook(&server, "{ method: freeze_users, users: [nobody@example.com] }"),
    );
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says("no active user `nobody@example.com`");
    s.write(
        "rollback.yaml",
        &playbook(&server, "{ method: freeze_users, exclude_users: [nobody@example.com] }"),
    );
    s.run(&["plan", "--phase", "freeze"])
        .exits(3)
        .says("NOT READY")
        .says("the org has no user `nobody@example.com` (freeze `exclude_users`)");
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says("the org has no user `nobody@example.com` (freeze `exclude_users`)");
    assert_eq!(logins(&server).await, prior, "nothing changed");
    // A portal user is not frozen by default (only `Standard` users are).
    let portal = prior[5].clone();
    call(
        &server,
        "PATCH",
        &format!("{V}/sobjects/User/{}", portal.0),
        Some(json!({"UserType": "PowerCustomerSuccess"})),
    )
    .await;

    s.write("rollback.yaml", &playbook(&server, "{ method: freeze_users }"));
    s.run(&["plan", "--phase", "freeze"])
        .ok()
        .says("can update UserLogin (freeze users); the freeze covers 4 user(s)");
    s.run(&["execute", "--phase", "freeze"])
        .ok()
        .says("frozen (freeze_users); a user write is refused");
    for (id, username, _, frozen) in logins(&server).await {
        assert_eq!(frozen, id != integration.0 && id != portal.0, "{username}");
    }
    let r = receipt(&s);
    let listed: Vec<&str> = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{r}");
    assert!(!listed.contains(&integration.1.as_str()) && !listed.contains(&before_frozen.as_str()));
    assert!(!listed.contains(&portal.1.as_str()), "{r}");
    assert_eq!(r["already_frozen"][0]["username"], before_frozen.as_str());
    assert_eq!(r["integration_user"]["id"], integration.0.as_str());
    s.run(&["status"]).ok().says("FROZEN");
    s.run(&["execute", "--phase", "freeze"]).ok().says("already frozen");

    s.run(&["execute", "--phase", "unfreeze"]).ok().says("a user write goes through");
    assert_eq!(
        logins(&server).await,
        prior,
        "every login as before: the one frozen before stays frozen"
    );
}

/// A dry run reads for real and writes nothing: a restore over damage and a freeze report what
/// they would do, and the org's records and logins are unchanged.
#[tokio::test]
async fn dry_run_writes_nothing() {
    let server = start("200", &[]);
    let s = folder(&server, "{ method: freeze_users }");
    s.run(&["execute", "--phase", "backup"]).ok();
    let ids = contact_ids(&server, 3).await;
    for id in &ids {
        call(
            &server,
            "PATCH",
            &format!("{V}/sobjects/Contact/{id}"),
            Some(json!({"Title": "Changed"})),
        )
        .await;
    }
    let before = state(&server).await;
    s.run(&["execute", "--phase", "restore", "--dry-run"])
        .ok()
        .says("Contact: insert 0, update 3, delete 0")
        .says("dry run: nothing was written");
    s.run(&["execute", "--phase", "freeze", "--dry-run"])
        .ok()
        .says("would freeze `crm`");
    assert_eq!(state(&server).await, before, "a dry run changed the org");
}

/// `sandbox: { flavor: salesforce, seed }` in an environment: the tool starts its own HTTPS
/// sandbox for the run (no token, trusting only the CA it made) and keeps its records in the
/// store folder, so later runs (and a sandbox served from that file meanwhile) see the same data,
/// a freeze included; a dry run leaves no file.
#[tokio::test]
async fn sandbox_key_starts_the_server_for_the_run() {
    let s = Sandbox::empty();
    let text = format!(
        "version: 1
name: salesforce-sandboxed
cutover: 2026-01-01T00:00:00Z
connectors:
  crm:
    type: salesforce
    instance_url: https://acme.my.salesforce.com
    token: ${{env:ROLLBACK_TEST_UNSET_SALESFORCE_TOKEN}}
    objects: [Account, Contact, Opportunity, Case]
    freeze: {{ method: freeze_users }}
environments:
  sandbox:
    connectors:
      crm: {{ sandbox: {{ flavor: salesforce, seed: 200 }} }}
{PHASES}"
    );
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "backup"])
        .exits(2)
        .says("ROLLBACK_TEST_UNSET_SALESFORCE_TOKEN");
    let data = s.path(".rollback/sandbox/crm.db");
    s.run(&["execute", "--env", "sandbox", "--phase", "delta", "--dry-run"])
        .ok()
        .says("Contact +0 ~0 -0");
    assert!(!data.exists(), "a dry run serves the seeded records from memory");
    s.run(&["execute", "--env", "sandbox", "--phase", "backup"])
        .ok()
        .says("Contact 200")
        .says("Account 20");
    assert!(data.is_file(), "the sandbox keeps its records in the store folder");

    // Users at work between runs, on a sandbox served from the same file.
    let data_arg = data.display().to_string();
    let between = Served::start(&["--flavor", "salesforce", "--data", &data_arg]);
    let traffic = json!({"cutover": "2026-01-01T00:00:00Z", "objects": ["Contact"], "create": 2, "update": 3, "archive": 1});
    assert_eq!(between.post("/_sandbox/traffic", traffic).await.0, 200);
    assert!(between.stop().success());

    s.run(&["execute", "--env", "sandbox", "--phase", "delta"])
        .ok()
        .says("Contact +2 ~3 -1");
    s.run(&["execute", "--env", "sandbox", "--phase", "freeze"])
        .ok()
        .says("a user write is refused");
    let frozen = Served::start(&["--flavor", "salesforce", "--data", &data_arg]);
    let users = logins(&frozen).await;
    assert_eq!(
        users.iter().filter(|u| u.3).count(),
        users.len() - 1,
        "the freeze is kept in the file"
    );
    assert!(frozen.stop().success());
    s.run(&["execute", "--env", "sandbox", "--phase", "unfreeze"])
        .ok()
        .says("a user write goes through");
}

/// Settings that cannot work are named with the connector and a hint: no `instance_url` or
/// `token` (at validation), a token Salesforce refuses, an sObject the org does not have.
#[tokio::test]
async fn bad_settings_are_named() {
    let s = Sandbox::empty();
    let with = |crm: &str| format!("version: 1\nname: v\nconnectors:\n  crm:\n{crm}\nphases:\n  backup:\n    - backup: {{ from: crm }}\n");
    s.write("rollback.yaml", &with("    type: salesforce\n    token: t\n    objects: [Contact]"));
    s.run(&["validate"])
        .exits(2)
        .says("connector `crm` of type `salesforce` needs `instance_url`")
        .says("hint: add `instance_url: https://MYDOMAIN.my.salesforce.com`");
    s.write(
        "rollback.yaml",
        &with("    type: salesforce\n    instance_url: https://acme.my.salesforce.com\n    client_id: x\n    client_secret: y\n    objects: [Contact]"),
    );
    s.run(&["validate"])
        .exits(2)
        .says("needs `token`")
        .says("no OAuth username-password flow");
    s.write(
        "rollback.yaml",
        &with("    type: salesforce\n    objects: [Contact]\n    sandbox: { flavor: salesforce }"),
    );
    s.run(&["validate"]).ok();

    let server = start("20", &[]);
    let s = folder(&server, "{ method: manual }");
    s.write("salesforce.token", "00Dwrong!token");
    s.run(&["execute", "--phase", "backup"])
        .exits(1)
        .says("connector `crm`")
        .says("401 INVALID_SESSION_ID: Session expired or invalid")
        .says("hint: Salesforce refused the token")
        .never_says("00Dwrong!token");
    s.write("salesforce.token", SANDBOX_TOKEN);
    let text = s
        .read("rollback.yaml")
        .replace("objects: [Account, Contact, Opportunity, Case]", "objects: [Contacts]");
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "backup"])
        .exits(1)
        .says("connector `crm`, object `Contacts`")
        .says("NOT_FOUND")
        .says("hint: check the object names");
}

/// With the org's daily allowance used up, Salesforce's 403 REQUEST_LIMIT_EXCEEDED ends the step
/// at once (never retried), in Salesforce's words with the usage and what to do.
#[tokio::test]
async fn request_limit_is_reported_not_retried() {
    let server = start("50", &["--daily-limit", "4"]);
    let s = folder(&server, "{ method: manual }");
    s.run(&["-v", "execute", "--phase", "backup"])
        .exits(1)
        .says("403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.")
        .says("(API usage 4/4 in the last 24 hours)")
        .says("24-hour API allowance is used up, so nothing was retried")
        .says("API usage of 4/4")
        .never_says("Salesforce call to retry");
}

/// Injected faults (a third of the calls failing with 500, 502 or 503, some connections reset)
/// only slow a backup and a restore down: every call is idempotent and retried, and both prove
/// themselves.
#[tokio::test]
async fn injected_faults_are_retried() {
    let server = start("300", &[]);
    let s = folder(&server, "{ method: manual }");
    let faults = json!({"spec": "error_rate=0.3,statuses=500|502|503,reset_rate=0.05,seed=7"});
    call(&server, "PUT", "/_sandbox/faults", Some(faults.clone())).await;
    s.run(&["-v", "execute", "--phase", "backup"])
        .ok()
        .says("Salesforce call to retry")
        .says("Salesforce call failed")
        .says("Contact 300");
    call(&server, "PUT", "/_sandbox/faults", Some(json!({"spec": ""}))).await;
    let records: Vec<Value> = contact_ids(&server, 30)
        .await
        .into_iter()
        .map(|id| json!({"attributes": {"type": "Contact"}, "id": id, "LastName": "Changed"}))
        .collect();
    call(
        &server,
        "PATCH",
        &format!("{V}/composite/sobjects"),
        Some(json!({"records": records})),
    )
    .await;
    call(&server, "PUT", "/_sandbox/faults", Some(faults)).await;
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("Contact +0 ~30 -0")
        .says("`crm` equals snapshot");
}

/// The quickstart's new CRM turned into Salesforce, served in environment `sandbox` by the
/// tool's own sandbox: the drill takes the sandbox's records as the migrated ones, plays the
/// users through its admin endpoint and proves the rollback. Against a real org (no sandbox) the
/// drill refuses before it touches anything.
#[test]
fn drill_with_a_salesforce_sandbox_as_the_new_crm() {
    let s = Sandbox::init(150);
    let text = s.read("rollback.yaml");
    let start = text.find("  newcrm:").unwrap();
    let end = start + text[start..].find("\nnotify:").unwrap();
    let salesforce = "  newcrm:
    type: salesforce
    instance_url: https://acme.my.salesforce.com
    token: ${env:ROLLBACK_TEST_DRILL_SALESFORCE_TOKEN}
    objects:
      companies: { table: Account }
      contacts: { table: Contact }
      deals: { table: Opportunity }
    freeze: { method: freeze_users }
";
    let sandboxed = format!(
        "{}{salesforce}\nenvironments:\n  sandbox:\n    connectors:\n      newcrm: {{ sandbox: {{ flavor: salesforce, seed: 200 }} }}\n{}",
        &text[..start],
        &text[end..]
    );
    s.write("rollback.yaml", &sandboxed);
    let out = s.run(&["drill", "--yes", "--traffic", "4", "--format", "json"]).ok();
    let report: Value = serde_json::from_str(&out.stdout()).unwrap();
    let proofs = report["proofs"].as_array().unwrap();
    assert!(proofs.iter().all(|p| p["ok"] == true), "{proofs:?}");
    for object in ["companies", "contacts", "deals"] {
        assert_eq!(
            report["traffic"][object],
            json!({"created": 4, "changed": 4, "deleted": 4}),
            "{object}"
        );
    }
    assert!(report["notes"][0].as_str().unwrap().contains("its admin endpoint played the users"));
    assert!(s.path(".rollback/sandbox/newcrm.db").is_file());

    let real = format!("{}{salesforce}{}", &text[..start], &text[end..]);
    s.write("rollback.yaml", &real);
    let before = s.snapshot_ids().len();
    let out = common::Run(
        s.cmd()
            .env("ROLLBACK_TEST_DRILL_SALESFORCE_TOKEN", "00Dnot-a-real-token")
            .args(["drill", "--yes"])
            .output()
            .unwrap(),
    );
    out.exits(2)
        .says("gives new records ids of its own")
        .says("sandbox: { flavor: salesforce }");
    assert_eq!(s.snapshot_ids().len(), before, "nothing was backed up");
}
