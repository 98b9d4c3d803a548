"""simple-salesforce against `rollback sandbox serve --flavor salesforce`.

Usage: python salesforce_client.py BASE_URL TOKEN CA_FILE EXPECTED_CONTACTS
Configured only with a session id, the instance URL and a requests session that trusts the
sandbox's CA. Pages through contacts (query / query_more / query_all, and a Bulk API 2.0 query job), creates and updates a batch
(sObject Collections and SFType), finds them by LastModifiedDate, upserts by external id, deletes
and reads back (query vs queryAll), freezes and unfreezes a user through UserLogin; every step
asserts its result. Prints `ok` at the end.
"""
import csv
import datetime
import io
import os
import sys
import time

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

base, token, ca_file, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# requests lets REQUESTS_CA_BUNDLE (often set to the system bundle) override `session.verify`, so
# the sandbox's CA goes there too.
os.environ["REQUESTS_CA_BUNDLE"] = ca_file
session = requests.Session()
session.verify = ca_file
sf = Salesforce(session_id=token, instance_url=base, session=session, version="59.0")

# Page through every contact by hand (query, then query_more on nextRecordsUrl), and with query_all.
page = sf.query("SELECT Id, Email, LastModifiedDate FROM Contact")
assert page["totalSize"] == expected and not page["done"], page["totalSize"]
ids = [r["Id"] for r in page["records"]]
pages = 1
while not page["done"]:
    page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    ids.extend(r["Id"] for r in page["records"])
    pages += 1
assert len(ids) == expected and len(set(ids)) == expected, (len(ids), len(set(ids)))
assert pages == -(-expected // 2000), pages
everyone = sf.query_all("SELECT Id, Email FROM Contact")["records"]
assert len(everyone) == expected and all(r["Email"] for r in everyone)
assert all(r["attributes"]["type"] == "Contact" for r in everyone)
assert sf.api_usage["api-usage"].used > 0, sf.api_usage

# Bulk API 2.0: a query job read back in CSV pages of 2,000.
bulk_rows = []
for chunk in sf.bulk2.Contact.query("SELECT Id, Email FROM Contact", max_records=2000, wait=0):
    rows = list(csv.reader(io.StringIO(chunk)))
    assert rows[0] == ["Id", "Email"], rows[0]
    bulk_rows.extend(rows[1:])
assert sorted(r[0] for r in bulk_rows) == sorted(ids), len(bulk_rows)

# Describe.
assert "Email" in {f["name"] for f in sf.Contact.describe()["fields"]}
assert "UserLogin" in {o["name"] for o in sf.describe()["sobjects"]}

# Create a batch through sObject Collections and one record through SFType, then update them.
before = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
created = sf.restful(
    "composite/sobjects",
    method="POST",
    json={
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Py", "Email": "py1@example.com"},
            {"attributes": {"type": "Contact"}, "LastName": "Thon", "Email": "py2@example.com"},
        ],
    },
)
assert [r["success"] for r in created] == [True, True], created
new_ids = [r["id"] for r in created]
single = sf.Contact.create({"LastName": "Single", "Email": "py3@example.com"})
assert single["success"] and single["id"].startswith("003"), single
new_ids.append(single["id"])
updated = sf.restful(
    "composite/sobjects",
    method="PATCH",
    json={"records": [{"attributes": {"type": "Contact"}, "id": i, "Title": "Batch updated"} for i in new_ids[:2]]},
)
assert all(r["success"] for r in updated), updated
assert sf.Contact.update(new_ids[2], {"Title": "Single updated"}) == 204
assert sf.Contact.get(new_ids[2])["Title"] == "Single updated"

# Search by LastModifiedDate: exactly the records written above.
recent = sf.query_all(f"SELECT Id, Title FROM Contact WHERE LastModifiedDate >= {before} ORDER BY LastModifiedDate")
assert sorted(r["Id"] for r in recent["records"]) == sorted(new_ids), recent
assert {r["Title"] for r in recent["records"]} == {"Batch updated", "Single updated"}

# Upsert by external id: created (201), then updated (200).
assert sf.Contact.upsert("External_Id__c/PY-1", {"LastName": "Upserted"}) == 201
assert sf.Contact.upsert("External_Id__c/PY-1", {"Title": "Again"}) == 200
assert sf.Contact.get_by_custom_id("External_Id__c", "PY-1")["Title"] == "Again"

# Delete, read back: gone from query and get, still in queryAll as deleted.
assert sf.Contact.delete(new_ids[0]) == 204
try:
    sf.Contact.get(new_ids[0])
    raise AssertionError("a deleted contact was still read")
except SalesforceResourceNotFound:
    pass
soql = f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{new_ids[0]}'"
assert sf.query(soql)["totalSize"] == 0
deleted = sf.query_all(soql, include_deleted=True)["records"]
assert len(deleted) == 1 and deleted[0]["IsDeleted"] is True, deleted
# Three created, one upserted, one deleted.
assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == expected + 3 + 1 - 1

# Records changed in a window (getUpdated) and deleted ones (getDeleted).
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
changed = sf.Contact.updated(start, end)
assert set(new_ids[1:]) <= set(changed["ids"]) and new_ids[0] not in changed["ids"], changed
gone = sf.Contact.deleted(start, end)
assert [d["id"] for d in gone["deletedRecords"]] == [new_ids[0]], gone

# A malformed query is the client's own exception, with Salesforce's error code.
try:
    sf.query("SELECT Id FRM Contact")
    raise AssertionError("a malformed query was accepted")
except SalesforceMalformedRequest as e:
    assert e.content[0]["errorCode"] == "MALFORMED_QUERY", e.content

# Freeze and unfreeze a user (never the integration user the session stands for).
me = sf.query("SELECT Id FROM User WHERE Username = 'integration@example.com.sandbox'")["records"][0]["Id"]
logins = sf.query(f"SELECT Id, UserId, IsFrozen FROM UserLogin WHERE UserId != '{me}'")["records"]
assert len(logins) == 5 and not any(l["IsFrozen"] for l in logins), logins
target = logins[0]["Id"]
assert sf.UserLogin.update(target, {"IsFrozen": True}) == 204
assert sf.UserLogin.get(target)["IsFrozen"] is True
assert sf.query("SELECT COUNT() FROM UserLogin WHERE IsFrozen = true")["totalSize"] == 1
time.sleep(0.01)
assert sf.UserLogin.update(target, {"IsFrozen": False}) == 204
assert sf.UserLogin.get(target)["IsFrozen"] is False

print("ok")
