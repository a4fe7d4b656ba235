"""Schemathesis hooks for scripts/test-schemathesis.sh.

- The right key for each API: space API operations get SPACE_KEY (every scope, a high
  rate limit), account API operations ACCOUNT_KEY; public routes get no key at all.
- Values for the `phone` format: numbers valid in their country's plan, written the ways
  clients write them. The schema states the shape (`pattern`); which numbers a country
  has is libphonenumber's metadata, which no pattern carries.
- Values for the `time-zone` format: names the tz database has. The schema states the
  shape; the list of zones is the database's.
- A fresh `Idempotency-Key` per request: the key's format is what the schema states, and
  a key reused with another request is refused (422) by design, as the header's
  description says. Generated keys keep their generated prefix and gain a unique suffix,
  so every request the run makes is a first use.
"""

import os
import re
import uuid

import schemathesis
from hypothesis import strategies as st

IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_SHAPE = re.compile(r"[!-~]{1,255}")

PHONES = [
    "+14155552671",
    "+1 (415) 555-0199",
    "+1 202-555-0123",
    "+44 20 7946 0958",
    "+442071838750",
    "+49 30 1234567",
    "+49.30.123456",
    "+33 1 42 68 53 00",
    "+61 412 345 678",
    "+81 3 1234 5678",
    "+8613800138000",
]

TIME_ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "America/Argentina/Buenos_Aires",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Etc/GMT+5",
]

schemathesis.openapi.format("phone", st.sampled_from(PHONES))
schemathesis.openapi.format("time-zone", st.sampled_from(TIME_ZONES))


def _bearer(case, token):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.auth().apply_to(path_regex="^/functions/v1/space-api/")
class SpaceKey:
    def get(self, case, context):
        return os.environ["SPACE_KEY"]

    def set(self, case, data, context):
        _bearer(case, data)


@schemathesis.auth().apply_to(path_regex="^/functions/v1/account-api/")
class AccountKey:
    def get(self, case, context):
        return os.environ["ACCOUNT_KEY"]

    def set(self, case, data, context):
        _bearer(case, data)


@schemathesis.hook
def before_call(context, case, kwargs):
    key = (case.headers or {}).get(IDEMPOTENCY_KEY)
    if isinstance(key, str) and IDEMPOTENCY_KEY_SHAPE.fullmatch(key):
        suffix = "-" + uuid.uuid4().hex
        case.headers[IDEMPOTENCY_KEY] = key[: 255 - len(suffix)] + suffix
