//! The Salesforce sandbox's objects — Account, Contact, Opportunity, Case, User, UserLogin — with
//! Salesforce's field names and key prefixes, their describe types, and deterministic seeding:
//! `--seed N` gives N contacts, N/10 accounts and cases, N/5 opportunities, and six users (the
//! first is the integration user the token stands for) each with a `UserLogin`.

use crate::generate::{COMPANY_A, COMPANY_B, COUNTRY, FIRST, INDUSTRY, LAST, NOTE_WORDS, OWNERS, Rng};
use crate::sandbox::store::{Kind, ObjectType, Property, Style, Table, prop, system};

/// Every object type served, in the order global describe lists them.
pub fn object_types() -> Vec<ObjectType> {
    let object = |name, prefix, required, createable, own: &'static str| {
        let mut properties = vec![system("Id", "Record ID", Kind::Text)];
        properties.extend(fields(own));
        properties.extend(fields(
            "CreatedDate:kept-date LastModifiedDate:kept-date SystemModstamp:kept-date IsDeleted:kept-bool",
        ));
        ObjectType {
            name,
            type_id: prefix,
            modified: "LastModifiedDate",
            defaults: &[],
            properties,
            style: Style::Salesforce,
            createable,
            required,
        }
    };
    vec![
        object(
            "Account",
            "001",
            &["Name"],
            true,
            concat!(
                "Name Type:enum Industry:enum BillingCountry Phone Website NumberOfEmployees:number AnnualRevenue:number ",
                "Description OwnerId External_Id__c"
            ),
        ),
        object(
            "Contact",
            "003",
            &["LastName"],
            true,
            concat!(
                "FirstName LastName Email Phone Title AccountId LeadSource:enum MailingCountry Description ",
                "OwnerId External_Id__c"
            ),
        ),
        object(
            "Opportunity",
            "006",
            &["Name", "StageName", "CloseDate"],
            true,
            concat!(
                "Name AccountId StageName:enum Amount:number CloseDate:date Type:enum ",
                "OwnerId External_Id__c"
            ),
        ),
        object(
            "Case",
            "500",
            &[],
            true,
            concat!(
                "Subject Description Status:enum Priority:enum Origin:enum AccountId ContactId ",
                "OwnerId External_Id__c"
            ),
        ),
        object(
            "User",
            "005",
            &[],
            false,
            "Username Email FirstName LastName Alias UserType:enum IsActive:bool",
        ),
        object("UserLogin", "060", &[], false, "UserId:kept IsFrozen:bool IsPasswordLocked:bool"),
    ]
}

/// Properties from a compact list, labelled by their names: `Name` is text; `:enum`, `:number`,
/// `:date` and `:bool` give other kinds; `kept` marks fields only the server writes.
fn fields(spec: &'static str) -> Vec<Property> {
    spec.split_whitespace()
        .map(|field| {
            let (name, kind) = field.split_once(':').unwrap_or((field, ""));
            let (kept, kind) = match kind.strip_prefix("kept") {
                Some(rest) => (true, rest.trim_start_matches('-')),
                None => (false, kind),
            };
            let kind = match kind {
                "enum" => Kind::Enumeration,
                "number" => Kind::Number,
                "date" => Kind::DateTime,
                "bool" => Kind::Boolean,
                _ => Kind::Text,
            };
            if kept { system(name, name, kind) } else { prop(name, name, kind) }
        })
        .collect()
}

/// The Salesforce field type of a property, for describe (and how its values read in JSON).
pub fn field_type(p: &Property) -> &'static str {
    match (p.kind, p.name) {
        (_, "Id") => "id",
        (Kind::Text, n) if n.ends_with("Id") => "reference",
        (Kind::Text, "Email") => "email",
        (Kind::Text, "Phone") => "phone",
        (Kind::Text, "Website") => "url",
        (Kind::Text, "Description") => "textarea",
        (Kind::Text, _) => "string",
        (Kind::Enumeration, _) => "picklist",
        (Kind::Number, "Amount" | "AnnualRevenue") => "currency",
        (Kind::Number, _) => "int",
        (Kind::DateTime, "CloseDate") => "date",
        (Kind::DateTime, _) => "datetime",
        (Kind::Boolean, _) => "boolean",
    }
}

/// The object a reference field points to.
pub fn reference_to(field: &str) -> Option<&'static str> {
    match field {
        "AccountId" => Some("Account"),
        "ContactId" => Some("Contact"),
        "OwnerId" | "UserId" => Some("User"),
        _ => None,
    }
}

/// Two years of history before this time, as HubSpot's seed has.
const TWO_YEARS_MS: i64 = 2 * 365 * 86_400_000;

/// Deterministic records for `contacts` contacts, created and modified before `now`.
pub fn seed(tables: &mut [Table], contacts: u64, now: i64) {
    let mut rng = Rng::new(contacts ^ 0x5a1e_5f0c);
    let count = |name: &str| match name {
        "Contact" => contacts,
        "Opportunity" => contacts / 5,
        "User" | "UserLogin" => 1 + OWNERS.len() as u64,
        _ => (contacts / 10).max(u64::from(contacts > 0)),
    };
    let accounts = count("Account");
    let users: Vec<String> = (1..=count("User")).map(|n| super::ids::show("005", n)).collect();
    for table in tables.iter_mut() {
        let name = table.kind.name;
        for n in 1..=count(name) {
            let created = now - TWO_YEARS_MS + rng.below(TWO_YEARS_MS as u64) as i64;
            let mut rec = table.blank(created);
            rec.updated = created + rng.below((now - created).max(1) as u64) as i64;
            let owner = users[rng.below(users.len() as u64) as usize].clone();
            let account = super::ids::show("001", 1 + rng.below(accounts.max(1)));
            let words = |rng: &mut Rng, n: u64| (0..n).map(|_| rng.pick(NOTE_WORDS)).collect::<Vec<_>>().join(" ");
            let mut put = |field: &str, value: String| table.put(&mut rec, field, value);
            match name {
                "Account" => {
                    let company = format!("{} {}", rng.pick(COMPANY_A), rng.pick(COMPANY_B));
                    put(
                        "Website",
                        format!("https://{}{n}.example.com", company.to_lowercase().replace([' ', '.'], "")),
                    );
                    put("Name", company);
                    put(
                        "Type",
                        rng.pick(&["Customer - Direct", "Customer - Channel", "Prospect", "Partner"]).into(),
                    );
                    put("Industry", rng.pick(INDUSTRY).into());
                    put("BillingCountry", rng.pick(COUNTRY).into());
                    put("Phone", format!("+{} {:09}", 1 + rng.below(98), rng.below(1_000_000_000)));
                    put("NumberOfEmployees", (1 + rng.below(20_000)).to_string());
                    put("AnnualRevenue", format!("{}.{:02}", rng.below(90_000_000), rng.below(100)));
                    put("OwnerId", owner);
                    put("External_Id__c", format!("ACC-{n:07}"));
                }
                "Contact" => {
                    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
                    let mailbox = format!("{first}.{last}").to_lowercase().replace(' ', "");
                    put("Email", format!("{mailbox}{n}@example.com"));
                    put("FirstName", first.into());
                    put("LastName", last.into());
                    if rng.chance(75) {
                        put("Phone", format!("+{} {:09}", 1 + rng.below(98), rng.below(1_000_000_000)));
                    }
                    put(
                        "Title",
                        rng.pick(&["CEO", "CFO", "Buyer", "Head of Sales", "Engineer", "Office Manager"])
                            .into(),
                    );
                    if rng.chance(85) {
                        put("AccountId", account);
                    }
                    put("OwnerId", owner);
                    put(
                        "LeadSource",
                        rng.pick(&["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"])
                            .into(),
                    );
                    put("MailingCountry", rng.pick(COUNTRY).into());
                    if rng.chance(35) {
                        let n = 5 + rng.below(10);
                        put("Description", words(&mut rng, n));
                    }
                    put("External_Id__c", format!("CON-{n:07}"));
                }
                "Opportunity" => {
                    put("Name", format!("{} expansion {n}", rng.pick(COMPANY_A)));
                    put("AccountId", account);
                    let stages = [
                        "Prospecting",
                        "Qualification",
                        "Needs Analysis",
                        "Proposal/Price Quote",
                        "Closed Won",
                        "Closed Lost",
                    ];
                    put("StageName", rng.pick(&stages).into());
                    put("Amount", format!("{}.{:02}", rng.below(250_000), rng.below(100)));
                    let close = chrono::DateTime::from_timestamp_millis(created + rng.below(180 * 86_400_000) as i64).unwrap_or_default();
                    put("CloseDate", close.format("%Y-%m-%d").to_string());
                    put("Type", rng.pick(&["New Business", "Existing Business"]).into());
                    put("OwnerId", owner);
                    put("External_Id__c", format!("OPP-{n:07}"));
                }
                "Case" => {
                    let subject = words(&mut rng, 3);
                    put("Subject", subject);
                    let n_words = 8 + rng.below(12);
                    put("Description", words(&mut rng, n_words));
                    put("Status", rng.pick(&["New", "Working", "Escalated", "Closed"]).into());
                    put("Priority", rng.pick(&["Low", "Medium", "High"]).into());
                    put("Origin", rng.pick(&["Email", "Phone", "Web"]).into());
                    put("AccountId", account);
                    put("ContactId", super::ids::show("003", 1 + rng.below(contacts.max(1))));
                    put("OwnerId", owner);
                    put("External_Id__c", format!("CAS-{n:07}"));
                }
                "User" => {
                    let login = if n == 1 {
                        "integration"
                    } else {
                        OWNERS[(n - 2) as usize % OWNERS.len()]
                    };
                    let (first, last) = login.split_once('.').unwrap_or(("Integration", "User"));
                    put("Username", format!("{login}@example.com.sandbox"));
                    put("Email", format!("{login}@example.com"));
                    put("FirstName", capitalised(first));
                    put("LastName", capitalised(last));
                    put("Alias", login.chars().take(8).collect());
                    put("UserType", "Standard".into());
                    put("IsActive", "true".into());
                }
                _ => {
                    put("UserId", users[(n - 1) as usize % users.len()].clone());
                    put("IsFrozen", "false".into());
                    put("IsPasswordLocked", "false".into());
                }
            }
            table.add(rec);
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
