"""Schemathesis hooks for scripts/test-schemathesis.sh: the right key for each API.

Space API operations get SPACE_KEY (every scope, a high rate limit), account API
operations ACCOUNT_KEY; public routes get no key at all.
"""

import os

import schemathesis


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
