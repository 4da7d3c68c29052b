"""Schemathesis hooks for scripts/schemathesis.sh: keep the fuzzed identity usable.

The run authenticates as one superuser. Schemathesis reuses ids it saw in
answers, so it learns that superuser's own id from GET /users/me and sooner
or later sends PATCH /users/{that id} with {"is_active": false} or
{"is_superuser": false}: correct for the server to honour, but every later
request of the run would then be a 401 or 403. After each successful
PATCH /users/{id}, a second superuser (whose id the fuzzer never sees)
restores the first one's flags. No check is affected: the hook only
repairs state between requests.
"""

import json
import os
import urllib.request

import schemathesis

BASE_URL = os.environ["PORTCULLIS_FUZZ_BASE_URL"]
API_PREFIX = os.environ["PORTCULLIS_FUZZ_API_PREFIX"]
FUZZED_USER_ID = os.environ["PORTCULLIS_FUZZ_USER_ID"]
KEEPER_TOKEN = os.environ["PORTCULLIS_FUZZ_KEEPER_TOKEN"]


def restore_fuzzed_user() -> None:
    request = urllib.request.Request(
        f"{BASE_URL}{API_PREFIX}/users/{FUZZED_USER_ID}",
        data=json.dumps({"is_active": True, "is_superuser": True}).encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {KEEPER_TOKEN}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


@schemathesis.hook
def after_call(context, case, response):
    if (
        case.method.upper() == "PATCH"
        and case.path == f"{API_PREFIX}/users/{{id}}"
        and 200 <= response.status_code < 300
    ):
        restore_fuzzed_user()
