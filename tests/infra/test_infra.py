"""Structural tests of infra/ that need no provider and no network (terraform validate
cannot run offline). They read the .tf files with python-hcl2 and the committed
manifest, and check that:

- every manifest function gets a Lambda function, role, policy, log group, integration,
  permission and alarms through for_each over the manifest, and every route key a route;
- (that every crate under functions/ is in the manifest, and the manifest is current, is
  tests/tests/api/deploy.rs's job: a new family fails there without stopping these checks);
- the IAM policy each function gets is exactly the manifest's permissions plus logs and
  tracing, and the function serving GET /functions/v1/space-api/secrets cannot read a
  secret value (no statement anywhere grants secretsmanager:GetSecretValue);
- Secrets Manager writes are scoped to space-api/<stage>/*, and only the account API has
  them; the dispatcher, which purges deleted Spaces, may only delete secret values and
  list secret names;
- the table, bucket and API have the properties the issue asks for.

Run: .venv/bin/python tests/infra/test_infra.py (scripts/check-infra.sh does).
"""

import fnmatch
import json
import pathlib
import unittest

import hcl2

ROOT = pathlib.Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SECRETS_ROUTE = "GET /functions/v1/space-api/secrets"
FORBIDDEN_FOR_SECRETS_FUNCTION = "secretsmanager:GetSecretValue"


def one(value):
    """python-hcl2 wraps most attribute values in a one-element list."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def load_infra():
    resources, data, locals_, variables = {}, {}, {}, {}
    for path in sorted(INFRA.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle)
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                resources.setdefault(kind, {}).update(named)
        for block in parsed.get("data", []):
            for kind, named in block.items():
                data.setdefault(kind, {}).update(named)
        for block in parsed.get("locals", []):
            locals_.update({k: v for k, v in block.items() if not k.startswith("__")})
        for block in parsed.get("variable", []):
            variables.update(block)
    return resources, data, locals_, variables


RESOURCES, DATA, LOCALS, VARIABLES = load_infra()
MANIFEST = json.loads((INFRA / "manifest.json").read_text())
FUNCTIONS = {function["name"]: function for function in MANIFEST["functions"]}


def resource(kind, name):
    assert kind in RESOURCES and name in RESOURCES[kind], f"no {kind}.{name} in infra/"
    return RESOURCES[kind][name]


def statement_actions(statement):
    actions = one(statement.get("actions", []))
    return [actions] if isinstance(actions, str) else list(actions)


def effective_policy(function):
    """The Allow statements data.aws_iam_policy_document.function yields for `function`:
    static statements as written, the dynamic statement over each.value.permissions
    expanded with the manifest, other dynamic statements taken as if they applied."""
    document = DATA["aws_iam_policy_document"]["function"]
    statements = []
    for statement in document.get("statement", []):
        if one(statement.get("effect", "Allow")) == "Allow":
            statements.append({"sid": one(statement.get("sid", "")), "actions": statement_actions(statement)})
    for dynamic in document.get("dynamic", []):
        for label, body in dynamic.items():
            assert label == "statement", f"unexpected dynamic block {label}"
            content = one(body["content"])
            if one(body["for_each"]) == "${each.value.permissions}":
                for permission in function["permissions"]:
                    statements.append({"sid": permission["resource"], "actions": list(permission["actions"])})
            else:
                statements.append({"sid": one(content.get("sid", "")), "actions": statement_actions(content)})
    return statements


class ManifestDrivesTerraform(unittest.TestCase):
    def test_terraform_reads_the_committed_manifest(self):
        self.assertEqual(one(LOCALS["manifest"]), '${jsondecode(file("${path.module}/manifest.json"))}')
        self.assertIn("for function in local.manifest.functions", one(LOCALS["functions"]))
        self.assertIn("function.name => function", one(LOCALS["functions"]))
        self.assertIn("for route in function.routes : route => function.name", one(LOCALS["routes"]))

    def test_every_function_gets_its_resources_by_for_each_over_the_manifest(self):
        per_function = [
            ("aws_lambda_function", "function"),
            ("aws_iam_role", "function"),
            ("aws_iam_role_policy", "function"),
            ("aws_cloudwatch_log_group", "function"),
            ("aws_cloudwatch_metric_alarm", "errors"),
            ("aws_cloudwatch_metric_alarm", "throttles"),
            ("aws_cloudwatch_metric_alarm", "server_errors"),
            ("aws_cloudwatch_log_metric_filter", "server_errors"),
        ]
        for kind, name in per_function:
            with self.subTest(resource=f"{kind}.{name}"):
                self.assertEqual(one(resource(kind, name)["for_each"]), "${local.functions}")
        self.assertEqual(one(DATA["aws_iam_policy_document"]["function"]["for_each"]), "${local.functions}")
        # No function is declared by hand next to the for_each.
        self.assertEqual(list(RESOURCES["aws_lambda_function"]), ["function"])
        # API Gateway reaches the functions that own routes; triggers reach the others.
        self.assertIn("if length(function.routes) > 0", one(LOCALS["routed_functions"]))
        for kind, name in [("aws_lambda_permission", "api"), ("aws_apigatewayv2_integration", "function")]:
            with self.subTest(resource=f"{kind}.{name}"):
                self.assertEqual(one(resource(kind, name)["for_each"]), "${local.routed_functions}")

    def test_every_route_key_is_a_route_to_its_functions_integration(self):
        route = resource("aws_apigatewayv2_route", "route")
        self.assertEqual(one(route["for_each"]), "${local.routes}")
        self.assertEqual(one(route["route_key"]), "${each.key}")
        self.assertEqual(one(route["target"]), "integrations/${aws_apigatewayv2_integration.function[each.value].id}")
        self.assertEqual(list(RESOURCES["aws_apigatewayv2_route"]), ["route"])
        keys = [key for function in MANIFEST["functions"] for key in function["routes"]]
        self.assertEqual(len(keys), len(set(keys)), "a route key is given to two functions")
        for key in keys:
            self.assertRegex(key, r"^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /[^ ]*$")

    def test_the_lambda_function_is_the_zip_make_build_makes(self):
        function = resource("aws_lambda_function", "function")
        self.assertEqual(one(function["runtime"]), "provided.al2023")
        self.assertEqual(one(function["handler"]), "bootstrap")
        self.assertEqual(one(function["architectures"]), "${var.architecture}")
        self.assertEqual(one(function["filename"]), "${var.artifacts_dir}/${each.value.binary}/bootstrap.zip")
        self.assertEqual(one(one(function["tracing_config"])["mode"]), "Active")
        self.assertEqual(one(VARIABLES["architecture"]["default"]), "arm64")
        self.assertIn("aws_cloudwatch_log_group.function[each.key]", one(one(function["logging_config"])["log_group"]))

    def test_every_env_name_and_permission_resource_has_a_value_in_terraform(self):
        env_values = one(LOCALS["env_values"])
        resource_arns = one(LOCALS["resource_arns"])
        for function in MANIFEST["functions"]:
            for name in function["env"]:
                self.assertIn(name, env_values, f"{function['name']} reads {name}, which Terraform does not set")
            for permission in function["permissions"]:
                self.assertIn(permission["resource"], resource_arns, f"{function['name']}: {permission['resource']}")

    def test_every_function_serving_routes_knows_the_public_url_of_the_api(self):
        # The links the API hands out (feeds, published and booking pages, uploads) are
        # absolute: every function that answers routes builds them from PUBLIC_URL.
        self.assertEqual(one(LOCALS["env_values"])["PUBLIC_URL"], "${aws_apigatewayv2_api.main.api_endpoint}")
        for function in MANIFEST["functions"]:
            if function["routes"]:
                self.assertIn("PUBLIC_URL", function["env"], function["name"])


class LeastPrivilege(unittest.TestCase):
    def test_the_function_serving_secret_names_cannot_read_secret_values(self):
        owners = [f for f in MANIFEST["functions"] if SECRETS_ROUTE in f["routes"]]
        self.assertEqual(len(owners), 1, f"{SECRETS_ROUTE} must be routed to exactly one function")
        for statement in effective_policy(owners[0]):
            for action in statement["actions"]:
                self.assertFalse(
                    fnmatch.fnmatchcase(FORBIDDEN_FOR_SECRETS_FUNCTION.lower(), action.lower()),
                    f"{owners[0]['name']} ({statement['sid']}) is granted {action}",
                )
            self.assertFalse(any(a.startswith("secretsmanager:") for a in statement["actions"]), statement)

    def test_no_function_may_read_any_secret_value(self):
        # Reading back is granted only on the signing keys (webhook secrets), whose prefix is
        # a sibling of the secret values' prefix, never under it.
        for function in MANIFEST["functions"]:
            for permission in function["permissions"]:
                if permission["resource"] == "signing_keys":
                    continue
                for action in permission["actions"]:
                    for read in ("secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"):
                        self.assertFalse(fnmatch.fnmatchcase(read.lower(), action.lower()), (function["name"], action))
        signing = one(one(LOCALS["resource_arns"])["signing_keys"])
        self.assertEqual(
            signing, "arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:${local.signing_prefix}/*"
        )
        self.assertEqual(one(LOCALS["signing_prefix"]), "space-api/${var.stage}-signing")
        self.assertFalse(one(LOCALS["signing_prefix"]).startswith(one(LOCALS["secrets_prefix"]) + "/"))

    def test_nothing_in_infra_grants_reading_secret_values(self):
        for path in INFRA.glob("*.tf"):
            text = path.read_text()
            self.assertNotRegex(text, r'"secretsmanager:(Get|BatchGet|\*)', path.name)

    def test_secret_writes_are_the_account_apis_under_the_stage_prefix(self):
        self.assertEqual(one(LOCALS["secrets_prefix"]), "space-api/${var.stage}")
        arns = one(one(LOCALS["resource_arns"])["secret_values"])
        self.assertEqual(
            arns, "arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:${local.secrets_prefix}/*"
        )
        granted = {
            f["name"]: sorted(a for p in f["permissions"] if p["resource"] == "secret_values" for a in p["actions"])
            for f in MANIFEST["functions"]
        }
        granted = {name: actions for name, actions in granted.items() if actions}
        self.assertEqual(
            granted,
            {
                "account-api": ["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:PutSecretValue"],
                # A deleted Space's purge removes its values, and can do nothing else to one.
                "dispatcher": ["secretsmanager:DeleteSecret"],
            },
        )
        prefixed = {f["name"] for f in MANIFEST["functions"] if "SECRETS_PREFIX" in f["env"]}
        self.assertEqual(prefixed, {"account-api", "dispatcher"})

    def test_only_the_purge_lists_secret_names_and_walks_the_table(self):
        self.assertEqual(one(one(LOCALS["resource_arns"])["secret_names"]), "*")
        for function in MANIFEST["functions"]:
            for permission in function["permissions"]:
                if permission["resource"] == "secret_names":
                    self.assertEqual(function["name"], "dispatcher")
                    self.assertEqual(permission["actions"], ["secretsmanager:ListSecrets"])
            actions = {a for p in function["permissions"] for a in p["actions"]}
            purges = function["name"] == "dispatcher"
            for action in ("dynamodb:Scan", "dynamodb:BatchWriteItem", "s3:DeleteObjectVersion", "s3:ListBucketVersions"):
                self.assertEqual(action in actions, purges, (function["name"], action))

    def test_each_function_gets_the_manifest_permissions_logs_and_tracing_only(self):
        for name, function in FUNCTIONS.items():
            granted = {action for statement in effective_policy(function) for action in statement["actions"]}
            expected = {action for permission in function["permissions"] for action in permission["actions"]}
            expected |= {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
            expected |= {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"}
            self.assertEqual(granted, expected, name)
            for action in granted:
                self.assertNotIn("*", action, f"{name}: wildcard action {action}")

    def test_table_actions_are_on_this_table_only(self):
        self.assertEqual(one(one(LOCALS["resource_arns"])["table"]), "${aws_dynamodb_table.main.arn}")
        prefixes = {
            "table": "dynamodb:",
            "table_stream": "dynamodb:",
            "secret_values": "secretsmanager:",
            "signing_keys": "secretsmanager:",
            "secret_names": "secretsmanager:",
            "jobs_queue": "sqs:",
            "stream_failures": "sqs:",
            "job_schedules": "scheduler:",
            "scheduler_role": "iam:PassRole",
            "sms_numbers": "sms-voice:SendTextMessage",
            "sms_configuration_set": "sms-voice:SendTextMessage",
            "mail_identities": "ses:",
            "mail_configuration_set": "ses:SendEmail",
            "receipts_queue": "sqs:",
        }
        for function in MANIFEST["functions"]:
            for permission in function["permissions"]:
                prefix = prefixes.get(permission["resource"], "s3:")
                for action in permission["actions"]:
                    self.assertTrue(action.startswith(prefix), (function["name"], permission["resource"], action))

    def test_s3_only_for_functions_that_store_media(self):
        for function in MANIFEST["functions"]:
            uses_s3 = any(a.startswith("s3:") for p in function["permissions"] for a in p["actions"])
            self.assertEqual(uses_s3, "MEDIA_BUCKET" in function["env"], function["name"])


class Worker(unittest.TestCase):
    """The dispatcher and the realtime stream: triggers from the manifest, queues, schedules."""

    def consumers(self, trigger):
        return {f["name"] for f in MANIFEST["functions"] if trigger in f["triggers"]}

    def test_the_dispatcher_alone_reads_the_stream_and_the_queue(self):
        self.assertEqual(self.consumers("table_stream"), {"dispatcher"})
        self.assertEqual(self.consumers("jobs_queue"), {"dispatcher"})
        # The realtime stream and the family whose exports stream (analytics).
        self.assertEqual(self.consumers("streaming_url"), {"realtime", "analytics"})
        for name, trigger in [("stream_consumers", "table_stream"), ("queue_consumers", "jobs_queue"), ("streaming_urls", "streaming_url")]:
            self.assertIn(f'contains(function.triggers,"{trigger}")', one(LOCALS[name]).replace(", ", ","))
        for function in MANIFEST["functions"]:
            uses = {p["resource"] for p in function["permissions"]}
            queued = bool(uses & {"jobs_queue", "job_schedules", "scheduler_role", "table_stream", "stream_failures"})
            self.assertEqual(queued, function["name"] == "dispatcher", function["name"])

    def test_the_dispatcher_reads_signing_keys_and_writes_no_secret_or_media(self):
        dispatcher = FUNCTIONS["dispatcher"]
        by_resource = {p["resource"]: sorted(p["actions"]) for p in dispatcher["permissions"]}
        # It signs deliveries with the signing keys; a purge deletes those of a deleted Space.
        self.assertEqual(by_resource["signing_keys"], ["secretsmanager:DeleteSecret", "secretsmanager:GetSecretValue"])
        # Secret values and media: deleted by a purge, never read or written.
        self.assertEqual(by_resource["secret_values"], ["secretsmanager:DeleteSecret"])
        self.assertEqual(by_resource["media_objects"], ["s3:DeleteObject", "s3:DeleteObjectVersion"])
        self.assertEqual(by_resource["media_bucket"], ["s3:ListBucketVersions"])
        self.assertEqual(set(dispatcher["routes"]), set())

    def test_the_stream_mapping_reports_partial_failures_and_keeps_what_fails(self):
        mapping = resource("aws_lambda_event_source_mapping", "stream")
        self.assertEqual(one(mapping["for_each"]), "${local.stream_consumers}")
        self.assertEqual(one(mapping["event_source_arn"]), "${aws_dynamodb_table.main.stream_arn}")
        self.assertEqual(one(mapping["function_response_types"]), "ReportBatchItemFailures")
        self.assertTrue(one(mapping["bisect_batch_on_function_error"]))
        self.assertGreater(one(mapping["maximum_retry_attempts"]), 0)
        failure = one(one(one(mapping["destination_config"])["on_failure"])["destination_arn"])
        self.assertEqual(failure, "${aws_sqs_queue.stream_failures.arn}")
        criteria = json.dumps(mapping["filter_criteria"])
        self.assertIn("INSERT", criteria)
        # A job withdrawn before its time reaches the dispatcher, which drops its schedule;
        # no other deletion does.
        self.assertIn("REMOVE", criteria)
        self.assertIn("JOBS#", criteria)

    def test_the_jobs_queue_mapping_reports_partial_failures_and_dead_letters(self):
        mapping = resource("aws_lambda_event_source_mapping", "jobs")
        self.assertEqual(one(mapping["for_each"]), "${local.queue_consumers}")
        self.assertEqual(one(mapping["event_source_arn"]), "${aws_sqs_queue.jobs.arn}")
        self.assertEqual(one(mapping["function_response_types"]), "ReportBatchItemFailures")
        self.assertLessEqual(one(mapping["batch_size"]), 10)
        jobs = resource("aws_sqs_queue", "jobs")
        self.assertIn("aws_sqs_queue.jobs_dead.arn", one(jobs["redrive_policy"]))
        # A message hidden while the dispatcher runs it: at least 6 times its timeout.
        self.assertEqual(one(jobs["visibility_timeout_seconds"]), "${6 * var.worker_timeout_seconds}")
        for name in ("jobs", "jobs_dead", "stream_failures"):
            self.assertEqual(one(resource("aws_sqs_queue", name)["kms_master_key_id"]), "${aws_kms_key.main.id}", name)

    def test_schedules_send_to_the_jobs_queue_only(self):
        policy = DATA["aws_iam_policy_document"]["scheduler"]
        actions = {action for statement in policy["statement"] for action in statement_actions(statement)}
        self.assertEqual(actions, {"sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey"})
        send = [s for s in policy["statement"] if "sqs:SendMessage" in statement_actions(s)]
        self.assertEqual(one(one(send)["resources"]), "${aws_sqs_queue.jobs.arn}")
        arns = one(LOCALS["resource_arns"])
        self.assertIn("schedule/${aws_scheduler_schedule_group.jobs.name}/*", one(arns["job_schedules"]))
        self.assertEqual(one(arns["scheduler_role"]), "${aws_iam_role.scheduler.arn}")
        self.assertIn("aws_scheduler_schedule_group", RESOURCES)

    def test_the_realtime_url_streams(self):
        url = resource("aws_lambda_function_url", "streaming")
        self.assertEqual(one(url["for_each"]), "${local.streaming_urls}")
        self.assertEqual(one(url["invoke_mode"]), "RESPONSE_STREAM")
        invoke = resource("aws_lambda_permission", "streaming_url_invoke")
        self.assertTrue(one(invoke["invoked_via_function_url"]))
        function = resource("aws_lambda_function", "function")
        self.assertIn('contains(each.value.triggers,"streaming_url") ? 900', one(function["timeout"]).replace(", ", ","))

    def test_the_console_reaches_the_realtime_url_from_the_apis_origin(self):
        cors = one(resource("aws_lambda_function_url", "streaming")["cors"])
        self.assertEqual(one(cors["allow_origins"]), "${aws_apigatewayv2_api.main.api_endpoint}")
        self.assertEqual(one(cors["allow_methods"]), "GET")
        self.assertIn("authorization", one(cors["allow_headers"]))
        # The account API reads the stream's URL from the table (console/mod.rs, REALTIME_URL).
        item = one(resource("aws_dynamodb_table_item", "realtime_url")["item"])
        self.assertIn("'PLATFORM'", item)
        self.assertIn("'REALTIME_URL'", item)
        self.assertIn("aws_lambda_function_url.streaming", item)
        self.assertIn("/functions/v1/space-realtime", item)


class Receipts(unittest.TestCase):
    """The providers' events: configuration sets -> SNS topic -> receipts queue -> function."""

    def test_the_receipts_function_alone_reads_the_receipts_queue(self):
        consumers = {f["name"] for f in MANIFEST["functions"] if "receipts_queue" in f["triggers"]}
        self.assertEqual(consumers, {"receipts"})
        self.assertIn('contains(function.triggers,"receipts_queue")', one(LOCALS["receipts_consumers"]).replace(", ", ","))
        receipts = FUNCTIONS["receipts"]
        self.assertEqual(receipts["routes"], [])
        by_resource = {p["resource"]: sorted(p["actions"]) for p in receipts["permissions"]}
        self.assertEqual(set(by_resource), {"table", "receipts_queue"})
        self.assertEqual(by_resource["receipts_queue"], ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"])
        for function in MANIFEST["functions"]:
            uses = {p["resource"] for p in function["permissions"]}
            self.assertEqual("receipts_queue" in uses, function["name"] == "receipts", function["name"])
        self.assertEqual(one(one(LOCALS["resource_arns"])["receipts_queue"]), "${aws_sqs_queue.receipts.arn}")
        self.assertEqual(one(LOCALS["kms_services"])["receipts_queue"], "sqs")

    def test_the_mapping_reports_partial_failures_and_the_queue_dead_letters(self):
        mapping = resource("aws_lambda_event_source_mapping", "receipts")
        self.assertEqual(one(mapping["for_each"]), "${local.receipts_consumers}")
        self.assertEqual(one(mapping["event_source_arn"]), "${aws_sqs_queue.receipts.arn}")
        self.assertEqual(one(mapping["function_response_types"]), "ReportBatchItemFailures")
        self.assertLessEqual(one(mapping["batch_size"]), 10)
        queue = resource("aws_sqs_queue", "receipts")
        self.assertIn("aws_sqs_queue.receipts_dead.arn", one(queue["redrive_policy"]))
        for name in ("receipts", "receipts_dead"):
            self.assertEqual(one(resource("aws_sqs_queue", name)["kms_master_key_id"]), "${aws_kms_key.main.id}", name)
        self.assertEqual(one(resource("aws_sns_topic", "receipts")["kms_master_key_id"]), "${aws_kms_key.main.id}")
        alarmed = one(resource("aws_cloudwatch_metric_alarm", "jobs_dead")["for_each"])
        self.assertEqual(alarmed["receipts_dead"], "${aws_sqs_queue.receipts_dead.name}")

    def test_the_topic_delivers_raw_events_to_the_queue_and_nothing_else_sends_there(self):
        subscription = resource("aws_sns_topic_subscription", "receipts")
        self.assertEqual(one(subscription["protocol"]), "sqs")
        self.assertEqual(one(subscription["endpoint"]), "${aws_sqs_queue.receipts.arn}")
        self.assertEqual(one(subscription["topic_arn"]), "${aws_sns_topic.receipts.arn}")
        # The function reads raw events and envelopes alike; raw is what is deployed.
        self.assertTrue(one(subscription["raw_message_delivery"]))
        queue_policy = DATA["aws_iam_policy_document"]["receipts_queue"]
        statement = one(queue_policy["statement"])
        self.assertEqual(statement_actions(statement), ["sqs:SendMessage"])
        self.assertEqual(one(one(statement["principals"])["identifiers"]), "sns.amazonaws.com")
        self.assertEqual(one(one(statement["condition"])["values"]), "${aws_sns_topic.receipts.arn}")
        topic_policy = DATA["aws_iam_policy_document"]["receipts_topic"]
        publishers = {one(one(s["principals"])["identifiers"]) for s in topic_policy["statement"]}
        self.assertEqual(publishers, {"ses.amazonaws.com", "sms-voice.amazonaws.com"})
        for statement in topic_policy["statement"]:
            self.assertEqual(statement_actions(statement), ["sns:Publish"])
            self.assertIn("aws:SourceAccount", json.dumps(statement["condition"]))

    def test_both_configuration_sets_publish_what_moves_a_message_to_the_topic(self):
        ses = one(resource("aws_sesv2_configuration_set_event_destination", "mail")["event_destination"])
        self.assertTrue(one(ses["enabled"]))
        self.assertEqual(one(one(ses["sns_destination"])["topic_arn"]), "${aws_sns_topic.receipts.arn}")
        self.assertLessEqual({"BOUNCE", "COMPLAINT", "DELIVERY"}, set(one(ses["matching_event_types"])))
        sms = resource("aws_pinpointsmsvoicev2_event_destination", "sms")
        self.assertEqual(one(sms["configuration_set_name"]), "${aws_pinpointsmsvoicev2_configuration_set.sms.name}")
        self.assertEqual(one(one(sms["sns_destination"])["topic_arn"]), "${aws_sns_topic.receipts.arn}")
        self.assertLessEqual(
            {"TEXT_DELIVERED", "TEXT_SUCCESSFUL", "TEXT_CARRIER_UNREACHABLE", "TEXT_BLOCKED", "TEXT_TTL_EXPIRED"},
            set(one(sms["matching_event_types"])),
        )

    def test_sends_name_the_configuration_sets_and_may_delete_identities(self):
        env_values = one(LOCALS["env_values"])
        self.assertEqual(env_values["MAIL_CONFIGURATION_SET"], "${aws_sesv2_configuration_set.mail.configuration_set_name}")
        self.assertEqual(env_values["SMS_CONFIGURATION_SET"], "${aws_pinpointsmsvoicev2_configuration_set.sms.name}")
        dispatcher = FUNCTIONS["dispatcher"]
        self.assertLessEqual({"MAIL_CONFIGURATION_SET", "SMS_CONFIGURATION_SET"}, set(dispatcher["env"]))
        by_resource = {p["resource"]: sorted(p["actions"]) for p in dispatcher["permissions"]}
        self.assertEqual(by_resource["mail_configuration_set"], ["ses:SendEmail"])
        self.assertEqual(by_resource["sms_configuration_set"], ["sms-voice:SendTextMessage"])
        self.assertIn("ses:DeleteEmailIdentity", by_resource["mail_identities"])
        arns = one(LOCALS["resource_arns"])
        self.assertIn("configuration-set/${aws_sesv2_configuration_set.mail.configuration_set_name}", one(arns["mail_configuration_set"]))
        self.assertEqual(one(arns["sms_configuration_set"]), "${aws_pinpointsmsvoicev2_configuration_set.sms.arn}")
        for function in MANIFEST["functions"]:
            actions = {a for p in function["permissions"] for a in p["actions"]}
            for action in ("ses:SendEmail", "ses:DeleteEmailIdentity", "sms-voice:SendTextMessage"):
                self.assertEqual(action in actions, function["name"] == "dispatcher", (function["name"], action))


class Resources(unittest.TestCase):
    def test_the_table(self):
        table = resource("aws_dynamodb_table", "main")
        self.assertEqual(one(table["billing_mode"]), "PAY_PER_REQUEST")
        self.assertEqual((one(table["hash_key"]), one(table["range_key"])), ("pk", "sk"))
        self.assertEqual(one(one(table["ttl"])["attribute_name"]), "ttl")
        self.assertTrue(one(one(table["point_in_time_recovery"])["enabled"]))
        self.assertTrue(one(one(table["server_side_encryption"])["enabled"]))
        self.assertTrue(one(table["stream_enabled"]))
        self.assertEqual(one(table["stream_view_type"]), "NEW_AND_OLD_IMAGES")

    def test_the_media_bucket(self):
        block = resource("aws_s3_bucket_public_access_block", "media")
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            self.assertTrue(one(block[setting]), setting)
        versioning = resource("aws_s3_bucket_versioning", "media")
        self.assertEqual(one(one(versioning["versioning_configuration"])["status"]), "Enabled")
        encryption = one(one(resource("aws_s3_bucket_server_side_encryption_configuration", "media")["rule"])["apply_server_side_encryption_by_default"])
        self.assertEqual(one(encryption["sse_algorithm"]), "aws:kms")
        tls = DATA["aws_iam_policy_document"]["tls_only"]
        self.assertIn("aws:SecureTransport", json.dumps(tls))

    def test_the_api(self):
        stage = resource("aws_apigatewayv2_stage", "main")
        self.assertIn("access_log_settings", stage)
        settings = one(stage["default_route_settings"])
        self.assertIn("throttling_rate_limit", settings)
        self.assertIn("throttling_burst_limit", settings)
        self.assertEqual(one(resource("aws_apigatewayv2_integration", "function")["payload_format_version"]), "2.0")

    def test_checkov_skips_carry_a_reason(self):
        for path in INFRA.glob("*.tf"):
            for line in path.read_text().splitlines():
                if "checkov:skip" in line:
                    self.assertRegex(line, r"#checkov:skip=CKV2?_AWS_\d+:\S.{10,}", f"{path.name}: {line.strip()}")


if __name__ == "__main__":
    unittest.main(verbosity=1)
