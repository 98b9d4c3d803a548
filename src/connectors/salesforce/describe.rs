//! An sObject's describe as the `salesforce` connector uses it: which fields a record keeps
//! (updateable or createable, not calculated, compound, files or Classic Encryption text, and
//! `CreatedDate`), which of them a write sets, the modified-time field, the id prefix and the lookups.

use std::collections::HashMap;

use serde_json::{Value, json};

/// One field of an sObject, as its describe says.
#[derive(Clone, Debug)]
pub(super) struct Field {
    /// The API name as the live describe spells it (what queries and writes use).
    pub name: String,
    /// The name records use: `name`, or the spelling of the snapshot being compared or restored
    /// when it knew the field in another case (Salesforce's names are case-insensitive).
    pub key: String,
    /// Salesforce's field type: `string`, `double`, `boolean`, `datetime`, `reference`, …
    pub kind: String,
    pub nillable: bool,
    pub updateable: bool,
}

/// An sObject's describe, as far as records need it.
#[derive(Clone, Debug)]
pub(super) struct Describe {
    /// The fields records keep (updateable or createable, not calculated, and `CreatedDate`), in
    /// name order.
    pub kept: Vec<Field>,
    /// Every field by its lower-case name (Salesforce's names are case-insensitive).
    all: HashMap<String, Field>,
    /// The field holding the last-modified time.
    pub modified: Option<String>,
    /// Whether the object has `IsDeleted` (so `queryAll` can tell deleted rows).
    pub has_deleted: bool,
    /// The 3-character prefix of the object's ids.
    pub key_prefix: Option<String>,
    /// `(field, sObject)` for each lookup, for restoring parents first.
    pub references: Vec<(String, String)>,
    /// The fields' definitions, for the snapshot's schema.
    pub described: Vec<Value>,
}

/// Field types a record does not keep: compound fields (their parts are fields of their own),
/// files, which a query answers with a URL instead of the data, and Classic Encryption text,
/// which reads as a mask (`****1234`) unless the user may view encrypted data: writing the mask
/// back would destroy the value.
const NOT_KEPT: [&str; 4] = ["address", "location", "base64", "encryptedstring"];

impl Describe {
    /// Reads an object's describe; `modified` is the playbook's `modified:` field, if any.
    pub fn from_api(body: &Value, modified: Option<&str>) -> Result<Describe, String> {
        let mut fields: Vec<&Value> = body["fields"].as_array().into_iter().flatten().collect();
        if fields.is_empty() {
            return Err("its describe lists no fields".into());
        }
        fields.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let mut out = Describe {
            kept: Vec::new(),
            all: HashMap::new(),
            modified: None,
            has_deleted: false,
            key_prefix: body["keyPrefix"].as_str().map(str::to_string),
            references: Vec::new(),
            described: Vec::new(),
        };
        for f in fields {
            let Some(name) = f["name"].as_str() else { continue };
            let kind = f["type"].as_str().unwrap_or("string");
            let field = Field {
                name: name.to_string(),
                key: name.to_string(),
                kind: kind.to_string(),
                nillable: f["nillable"] == true,
                updateable: f["updateable"] == true && f["calculated"] != true,
            };
            let writable = (f["updateable"] == true || f["createable"] == true) && f["calculated"] != true;
            let kept = name != "Id" && !NOT_KEPT.contains(&kind) && (writable || name == "CreatedDate");
            if kept {
                out.kept.push(field.clone());
                if let Some(target) = f["referenceTo"].as_array().and_then(|t| t.first()).and_then(Value::as_str) {
                    out.references.push((name.to_string(), target.to_string()));
                }
            }
            out.has_deleted |= name == "IsDeleted";
            out.described.push(
                json!({"name": name, "label": f["label"], "type": kind, "updateable": field.updateable,
                                      "createable": f["createable"], "nillable": field.nillable, "kept": kept,
                                      "referenceTo": f["referenceTo"]}),
            );
            out.all.insert(name.to_ascii_lowercase(), field);
        }
        out.modified = match modified {
            Some(wanted) => match out.all.get(&wanted.to_ascii_lowercase()) {
                Some(f) if f.kind == "datetime" => Some(f.name.clone()),
                Some(f) => return Err(format!("its `modified` field `{}` is of type {}, not datetime", f.name, f.kind)),
                None => return Err(format!("it has no field `{wanted}` (its `modified:`)")),
            },
            None => ["SystemModstamp", "LastModifiedDate", "CreatedDate"]
                .into_iter()
                .find(|n| out.all.contains_key(&n.to_ascii_lowercase()))
                .map(str::to_string),
        };
        Ok(out)
    }

    /// Only the kept fields among `known` (the snapshot's names by their lower-case form): those
    /// a snapshot knew, read under the snapshot's spelling. Every field stays known, so a
    /// record's field the sObject no longer has is still named as such.
    pub fn narrowed(&self, known: &HashMap<String, String>) -> Describe {
        let mut out = self.clone();
        out.kept.retain_mut(|f| match known.get(&f.name.to_ascii_lowercase()) {
            Some(spelt) => {
                f.key = spelt.clone();
                true
            }
            None => false,
        });
        out
    }

    /// A field by name, in any case.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.all.get(&name.to_ascii_lowercase())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::connectors::salesforce) fn contact_describe() -> Value {
        json!({"name": "Contact", "keyPrefix": "003", "fields": [
            {"name": "Id", "type": "id", "updateable": false, "createable": false, "nillable": false},
            {"name": "LastName", "type": "string", "updateable": true, "createable": true, "nillable": false},
            {"name": "Email", "type": "email", "updateable": true, "createable": true, "nillable": true},
            {"name": "AccountId", "type": "reference", "updateable": true, "createable": true, "nillable": true, "referenceTo": ["Account"]},
            {"name": "Score__c", "type": "double", "updateable": false, "createable": false, "calculated": true},
            {"name": "MailingAddress", "type": "address", "updateable": false, "createable": false},
            {"name": "External__c", "type": "string", "updateable": false, "createable": true, "nillable": true},
            {"name": "Secret__c", "type": "encryptedstring", "updateable": true, "createable": true, "nillable": true},
            {"name": "CreatedDate", "type": "datetime", "updateable": false, "createable": false},
            {"name": "LastModifiedDate", "type": "datetime", "updateable": false, "createable": false},
            {"name": "SystemModstamp", "type": "datetime", "updateable": false, "createable": false},
            {"name": "IsDeleted", "type": "boolean", "updateable": false, "createable": false},
        ]})
    }

    /// Records keep the updateable and createable fields and `CreatedDate`, not calculated,
    /// compound or encrypted (masked) ones; writes set the updateable ones; SystemModstamp is the modified time.
    #[test]
    fn kept_and_writable_fields() {
        let d = Describe::from_api(&contact_describe(), None).unwrap();
        let kept: Vec<&str> = d.kept.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(kept, ["AccountId", "CreatedDate", "Email", "External__c", "LastName"]);
        let writable: Vec<&str> = d.kept.iter().filter(|f| f.updateable).map(|f| f.name.as_str()).collect();
        assert_eq!(writable, ["AccountId", "Email", "LastName"]);
        assert_eq!(d.modified.as_deref(), Some("SystemModstamp"));
        assert!(d.has_deleted);
        assert_eq!(d.references, [("AccountId".to_string(), "Account".to_string())]);
        assert_eq!(d.field("lastname").map(|f| f.name.as_str()), Some("LastName"));
        let d = Describe::from_api(&contact_describe(), Some("lastmodifieddate")).unwrap();
        assert_eq!(d.modified.as_deref(), Some("LastModifiedDate"));
        assert!(
            Describe::from_api(&contact_describe(), Some("Email"))
                .unwrap_err()
                .contains("not datetime")
        );
        assert!(
            Describe::from_api(&contact_describe(), Some("Nope"))
                .unwrap_err()
                .contains("no field `Nope`")
        );
        assert!(Describe::from_api(&json!({}), None).is_err());
        let known = [("lastname", "lastName"), ("createddate", "CreatedDate")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let narrowed = d.narrowed(&known);
        let kept: Vec<(&str, &str)> = narrowed.kept.iter().map(|f| (f.name.as_str(), f.key.as_str())).collect();
        assert_eq!(kept, [("CreatedDate", "CreatedDate"), ("LastName", "lastName")]);
        assert!(narrowed.field("Email").is_some(), "still a field of the sObject");
    }
}
