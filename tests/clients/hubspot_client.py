"""HubSpot's own Python client (hubspot-api-client) against `rollback sandbox serve --flavor hubspot`.

Usage: python hubspot_client.py BASE_URL TOKEN EXPECTED_CONTACTS
Pages through contacts, creates and updates a batch, searches by last-modified date, archives,
reads back; every step asserts its result. Prints `ok` at the end.
"""
import sys
import time

import hubspot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectId,
)

base, token, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = hubspot.Client.create(access_token=token, host=base)
contacts = client.crm.contacts

# Page through every contact (the client's own pager: pages of 100, `after` cursors).
everyone = contacts.get_all(properties=["email", "lastname"])
assert len(everyone) == expected, f"paged {len(everyone)} contacts, expected {expected}"
assert len({c.id for c in everyone}) == expected, "ids repeat across pages"
assert all(c.properties.get("email") for c in everyone), "every contact has an email"

before = int(time.time() * 1000) - 1
created = contacts.batch_api.create(
    BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": "py1@example.com", "firstname": "Py"}),
            SimplePublicObjectBatchInputForCreate(properties={"email": "py2@example.com", "firstname": "Thon"}),
        ]
    )
)
ids = sorted(r.id for r in created.results)
assert len(ids) == 2, created

updated = contacts.batch_api.update(
    BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=ids[0], properties={"lastname": "Updated"})]
    )
)
assert updated.results[0].properties["lastname"] == "Updated", updated

search = PublicObjectSearchRequest(
    filter_groups=[FilterGroup(filters=[Filter(property_name="lastmodifieddate", operator="GTE", value=str(before))])],
    sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
    properties=["email", "lastname"],
    limit=100,
)
found = contacts.search_api.do_search(public_object_search_request=search)
assert found.total == 2, f"search found {found.total}"
assert sorted(r.id for r in found.results) == ids

contacts.basic_api.archive(contact_id=ids[1])
back = contacts.basic_api.get_by_id(contact_id=ids[0], properties=["lastname", "email"])
assert back.properties["lastname"] == "Updated" and back.properties["email"] == "py1@example.com", back
try:
    contacts.basic_api.get_by_id(contact_id=ids[1])
    raise AssertionError("an archived contact is still readable")
except ApiException as e:
    assert e.status == 404, e.status
archived = contacts.batch_api.read(
    BatchReadInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=ids[1])], properties=["email"]),
    archived=True,
)
assert archived.results[0].archived is True, archived
contacts.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=ids[0])]))
remaining = contacts.get_all()
assert len(remaining) == expected, f"{len(remaining)} live contacts after archiving the new ones"
print("ok")
