"""The CloudFormation templates agree with the definitions, the job contract and the rules.

`make lint-infra` runs cfn-lint, checkov, asl-validator and hadolint; these tests check what
those tools cannot know: that every `${Placeholder}` of a definition is substituted, that the
Glue jobs get the argument names the job scripts parse and the conf rendered from
`sluiceway.spark.startup_conf`, that EMR Serverless runs the custom Python 3.11 image, that the
landing rule hands the starter the fields it reads, that staging, the lease table, the alarms,
the key policy and the analyst role say what the code and the AWS documentation need, and that
no IAM policy allows a wildcard action. Only AWS can prove them further (docs/deploying.md).
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from sluiceway.arrival import packaged_feeds
from sluiceway.orchestration import PIPELINE_DEFINITION, STARTER_DEFINITION
from sluiceway.orchestration.asl import placeholders
from sluiceway.orchestration.metrics import DEAD_LETTERS, FEED_LATE, METRIC_NAMESPACE
from sluiceway.orchestration.pipeline import REPOSITORY
from sluiceway.orchestration.template import render_template, rendered_conf
from sluiceway.settings import load_settings
from sluiceway.spark import EMR_ICEBERG_JAR, EMR_PYTHON

pytestmark = pytest.mark.infra

TEMPLATES = PIPELINE_DEFINITION.parents[1] / "cloudformation"
EMR_DOCKERFILE = PIPELINE_DEFINITION.parents[1] / "emr-serverless" / "Dockerfile"


def rendered(name: str, tmp_path: Path) -> dict[str, Any]:
    output = tmp_path / name
    render_template(TEMPLATES / name, output)
    assert "{{" not in output.read_text(), "every conf token is rendered"
    template, errors = decode_str(output.read_text())
    assert not errors, errors
    return template


@pytest.fixture
def pipeline(tmp_path: Path) -> dict[str, Any]:
    return rendered("pipeline.yaml", tmp_path)


@pytest.fixture
def storage(tmp_path: Path) -> dict[str, Any]:
    return rendered("storage.yaml", tmp_path)


def test_every_definition_placeholder_has_a_substitution_and_none_is_unused(
    pipeline: dict[str, Any],
) -> None:
    for resource, definition in (
        ("PipelineStateMachine", PIPELINE_DEFINITION),
        ("StarterStateMachine", STARTER_DEFINITION),
    ):
        properties = pipeline["Resources"][resource]["Properties"]
        assert set(properties["DefinitionSubstitutions"]) == placeholders(definition), resource
        assert isinstance(properties["Definition"], dict), "the definition must be inlined"


def test_glue_jobs_get_the_argument_names_the_job_scripts_parse(pipeline: dict[str, Any]) -> None:
    scripts = {"IngestJob": "ingest_landing.py", "ProcessJob": "process_records.py"}
    scripts["MaintenanceJob"] = "maintain_tables.py"
    for resource, script in scripts.items():
        properties = pipeline["Resources"][resource]["Properties"]
        arguments = properties["DefaultArguments"]
        assert arguments["--profile"] == "glue"
        assert {"--warehouse", "--namespace", "--datalake-formats", "--conf"} <= set(arguments)
        assert arguments["--datalake-formats"] == "iceberg"
        conf = arguments["--conf"]["Fn::Sub"][0]
        assert "spark.sql.catalog.lake.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog" in conf
        assert properties["Command"]["ScriptLocation"]["Fn::Sub"][0].endswith(f"/jobs/{script}")
        assert properties["GlueVersion"] == {"Ref": "GlueVersion"}
        assert properties["Timeout"] and properties["ExecutionProperty"]["MaxConcurrentRuns"]


def test_the_landing_rule_hands_the_starter_exactly_the_fields_it_reads(
    pipeline: dict[str, Any],
) -> None:
    target = pipeline["Resources"]["LandingObjectCreatedRule"]["Properties"]["Targets"][0]
    transformer = target["InputTransformer"]
    fields = set(transformer["InputPathsMap"])
    starter_text = STARTER_DEFINITION.read_text()
    assert set(re.findall(r"\$\.(bucket|key|version)\b", starter_text)) == fields
    assert transformer["InputPathsMap"]["version"] == "$.detail.object.version-id"
    assert target["DeadLetterConfig"], "undeliverable events must not be dropped"


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [properties.get("PolicyDocument")]
        documents += [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        for document in filter(None, documents):
            found += [(name, statement) for statement in document["Statement"]]
    return found


def test_no_iam_policy_allows_a_wildcard_action(
    pipeline: dict[str, Any], storage: dict[str, Any]
) -> None:
    statements = _statements(pipeline) + _statements(storage)
    assert len(statements) > 20
    for name, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action, f"{name}: {action}"


def test_buckets_are_kms_encrypted_private_and_refuse_plain_http(storage: dict[str, Any]) -> None:
    resources = storage["Resources"]
    buckets = [name for name, item in resources.items() if item["Type"] == "AWS::S3::Bucket"]
    assert len(buckets) == 5
    tls_only = [
        statement
        for name, statement in _statements(storage)
        if name.endswith("BucketPolicy") and statement.get("Sid") == "DenyInsecureTransport"
    ]
    denied = {statement["Resource"][0]["Fn::GetAtt"][0] for statement in tls_only}
    assert denied == set(buckets)
    for name in buckets:
        properties = resources[name]["Properties"]
        assert all(properties["PublicAccessBlockConfiguration"].values()), name
        encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        algorithm = encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        # S3 server access logs can only be delivered to an SSE-S3 bucket.
        assert algorithm == ("AES256" if name == "AccessLogsBucket" else "aws:kms"), name
    landing = resources["LandingBucket"]["Properties"]
    assert landing["VersioningConfiguration"]["Status"] == "Enabled"


def _option_names(arguments: list[str]) -> set[str]:
    return {item for item in arguments if item.startswith("--")}


def test_glue_and_batch_runs_of_a_step_get_the_same_job_arguments(pipeline: dict[str, Any]) -> None:
    definition = json.loads(PIPELINE_DEFINITION.read_text())["States"]
    job_options = {"--profile", "--warehouse", "--namespace"}
    for step, job in (("Ingest", "IngestJob"), ("Process", "ProcessJob")):
        glue_arguments = definition[f"{step}OnGlue"]["Parameters"]["Arguments"]
        defaults = pipeline["Resources"][job]["Properties"]["DefaultArguments"]
        glue = {name.removesuffix(".$") for name in glue_arguments} | (set(defaults) & job_options)
        command = definition[f"{step}OnBatch"]["Parameters"]["ContainerOverrides"]["Command.$"]
        batch = _option_names(re.findall(r"'(--[a-z-]+)'", command))
        assert glue == batch, step


def _sub_text(value: Any) -> str:
    """The format string of an `!Sub` (short or list form)."""
    sub = value["Fn::Sub"]
    return sub[0] if isinstance(sub, list) else sub


def _import_of(value: Any) -> str:
    """The export name an `Fn::ImportValue` reads (`${StorageStackName}-X` -> X)."""
    return value["Fn::ImportValue"]["Fn::Sub"].removeprefix("${StorageStackName}-")


def test_emr_serverless_runs_the_custom_python_311_image_and_no_wheel_on_pyfiles(
    pipeline: dict[str, Any],
) -> None:
    resources = pipeline["Resources"]
    application = resources["EmrApplication"]["Properties"]
    condition, image, no_image = application["ImageConfiguration"]["Fn::If"]
    assert condition == "UseEmrServerless" and no_image == {"Ref": "AWS::NoValue"}
    assert _sub_text(image["ImageUri"]) == "${EmrImageRepository.RepositoryUri}:${ImageTag}"
    policy = resources["EmrImageRepository"]["Properties"]["RepositoryPolicyText"]
    (pull,) = policy["Statement"]
    assert pull["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
    assert set(pull["Action"]) == {
        "ecr:BatchGetImage",
        "ecr:DescribeImages",
        "ecr:GetDownloadUrlForLayer",
    }

    substitutions = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    parameters = _sub_text(substitutions["EmrSparkSubmitParameters"])
    conf = dict(item.split("=", 1) for item in parameters.split("--conf ")[1:])
    conf = {key: value.strip() for key, value in conf.items()}
    assert conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] == EMR_PYTHON
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == EMR_PYTHON
    assert conf["spark.jars"] == EMR_ICEBERG_JAR
    assert conf["spark.sql.catalog.lake.catalog-impl"].endswith("GlueCatalog")
    assert not any("pyFiles" in key for key in conf) and ".whl" not in parameters

    states = json.loads(PIPELINE_DEFINITION.read_text())["States"]
    for state, script in (
        ("IngestOnEmrServerless", "ingest_landing.py"),
        ("ProcessOnEmrServerless", "process_records.py"),
    ):
        driver = states[state]["Parameters"]["JobDriver"]["SparkSubmit"]
        assert driver["EntryPoint"] == f"${{ArtifactsUri}}/jobs/{script}"
        assert (REPOSITORY / "jobs" / script).is_file()
        assert driver["SparkSubmitParameters"] == "${EmrSparkSubmitParameters}"

    # The image gives the interpreter the parameters name, on the release the stack runs.
    dockerfile = EMR_DOCKERFILE.read_text()
    release = re.search(r"^ARG EMR_RELEASE=(\S+)$", dockerfile, re.MULTILINE)
    assert release and release.group(1) == pipeline["Parameters"]["EmrReleaseLabel"]["Default"]
    assert "FROM public.ecr.aws/emr-serverless/spark/${EMR_RELEASE}:" in dockerfile
    version = Path(EMR_PYTHON).name  # python3.11
    assert f"dnf install -y {version} " in dockerfile
    assert f"{version} -m pip install --no-cache-dir /tmp/wheels/sluiceway-" in dockerfile
    assert dockerfile.rstrip().endswith("USER hadoop:hadoop")
    assert "infra/emr-serverless/Dockerfile" in (REPOSITORY / "Makefile").read_text()


def test_the_glue_conf_is_rendered_once_from_the_startup_conf(pipeline: dict[str, Any]) -> None:
    expected = rendered_conf("glue-conf", "glue")
    for job in ("IngestJob", "ProcessJob", "MaintenanceJob"):
        conf = pipeline["Resources"][job]["Properties"]["DefaultArguments"]["--conf"]
        assert _sub_text(conf) == expected, job
        assert set(conf["Fn::Sub"][1]) == {"Warehouse"}
    assert "spark.sql.catalog.lake.warehouse=s3://${Warehouse}/" in expected
    assert not expected.startswith("--conf")
    # One definition (template.glue_conf_argument): each job's `--conf` is one token line.
    source = (TEMPLATES / "pipeline.yaml").read_text()
    lines = [line.strip() for line in source.splitlines() if line.strip().startswith('"--conf"')]
    assert lines == ['"--conf": "{{glue-conf-argument:glue}}"'] * 3


def test_staged_landing_files_expire_where_the_aws_profiles_stage_them(
    pipeline: dict[str, Any], storage: dict[str, Any]
) -> None:
    staging = load_settings(arguments={"profile": "glue", "warehouse": "s3://bucket/"})
    prefix = staging.staging_location().removeprefix("s3://bucket/") + "/"
    bucket = storage["Resources"]["WarehouseBucket"]["Properties"]
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    rule = rules["ExpireStagedLandingFiles"]
    assert rule["Prefix"] == prefix == "_staging/"
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"]
    assert rules["ExpireJobOutcomes"]["Prefix"] == "_outcomes/"
    # Every job role may read, write and delete there (the whole warehouse bucket).
    statements = dict(
        (statement["Sid"], statement)
        for name, statement in _statements(pipeline)
        if name == "JobDataAccessPolicy"
    )
    warehouse = statements["ReadWriteWarehouse"]
    assert set(warehouse["Action"]) >= {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert _sub_text(warehouse["Resource"]).endswith(":::${Bucket}/*")
    for role in ("GlueJobRole", "EmrJobRole", "BatchJobRole"):
        managed = pipeline["Resources"][role]["Properties"]["ManagedPolicyArns"]
        assert {"Ref": "JobDataAccessPolicy"} in managed, role


def test_one_lease_table_serialises_every_writer_and_every_job_knows_it(
    pipeline: dict[str, Any], storage: dict[str, Any]
) -> None:
    table = storage["Resources"]["LeaseTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "lease_name", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "lease_name", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True

    lease = next(
        statement
        for name, statement in _statements(pipeline)
        if statement.get("Sid") == "HoldTheWriterLease"
    )
    assert set(lease["Action"]) == {
        "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    }  # fmt: skip
    assert _import_of(lease["Resource"]) == "LeaseTableArn"

    resources = pipeline["Resources"]
    for job in ("IngestJob", "ProcessJob", "MaintenanceJob"):
        properties = resources[job]["Properties"]
        assert _import_of(properties["DefaultArguments"]["--lease-table"]) == "LeaseTable"
        assert properties["ExecutionProperty"]["MaxConcurrentRuns"] == 1, job
    substitutions = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    emr = substitutions["EmrSparkSubmitParameters"]["Fn::Sub"]
    assert "spark.emr-serverless.driverEnv.SLUICEWAY_LEASE_TABLE=${LeaseTable}" in emr[0]
    assert _import_of(emr[1]["LeaseTable"]) == "LeaseTable"
    batch = resources["JobDefinition"]["Properties"]["ContainerProperties"]["Environment"]
    variables = {item["Name"]: item["Value"] for item in batch}
    assert _import_of(variables["SLUICEWAY_LEASE_TABLE"]) == "LeaseTable"
    # The jobs' settings read that variable (SLUICEWAY_<FIELD>).
    assert load_settings(environ={"SLUICEWAY_LEASE_TABLE": "t"}).lease_table == "t"


def test_the_dead_letters_alarm_watches_what_the_process_job_publishes(
    pipeline: dict[str, Any],
) -> None:
    alarm = pipeline["Resources"]["DeadLettersAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRIC_NAMESPACE, DEAD_LETTERS)
    (dimension,) = alarm["Dimensions"]
    assert dimension["Name"] == "Namespace" and _import_of(dimension["Value"]) == "GlueDatabase"
    assert alarm["Statistic"] == "Sum"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert _import_of(alarm["AlarmActions"][0]) == "FailureTopicArn"


def test_the_landing_dlq_uses_sse_sqs_and_the_key_admits_no_eventbridge(
    pipeline: dict[str, Any], storage: dict[str, Any]
) -> None:
    queue = pipeline["Resources"]["StarterDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert "KmsMasterKeyId" not in queue
    key_policy = storage["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    by_sid = {statement["Sid"]: statement for statement in key_policy}
    assert set(by_sid) == {
        "AccountAdministersThroughIam",
        "CloudWatchLogsEncryptsSluicewayLogGroups",
        "AlarmsPublishToTheEncryptedTopic",
    }
    services = json.dumps([statement["Principal"] for statement in key_policy])
    assert "events.amazonaws.com" not in services
    alarms = by_sid["AlarmsPublishToTheEncryptedTopic"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert alarms["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert "kms:EncryptionContext:aws:logs:arn" in json.dumps(
        by_sid["CloudWatchLogsEncryptsSluicewayLogGroups"]["Condition"]
    )


def test_the_analyst_role_queries_with_athena_and_reads_but_never_writes_the_tables(
    storage: dict[str, Any],
) -> None:
    resources = storage["Resources"]
    role = resources["AnalystRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "AnalystAccessPolicy"}]
    document = resources["AnalystAccessPolicy"]["Properties"]["PolicyDocument"]
    by_sid = {statement["Sid"]: statement for statement in document["Statement"]}
    assert all(statement["Effect"] == "Allow" for statement in by_sid.values())

    athena = by_sid["QueryInTheSluicewayWorkgroup"]
    assert {"athena:StartQueryExecution", "athena:GetQueryResults"} <= set(athena["Action"])
    assert _sub_text(athena["Resource"]).endswith(":workgroup/${AthenaWorkGroup}")
    catalog = by_sid["ReadTheCatalog"]
    assert all(action.startswith(("glue:Get", "glue:BatchGet")) for action in catalog["Action"])
    assert {"glue:GetTable", "glue:GetDatabase", "glue:GetPartitions"} <= set(catalog["Action"])
    actions = [
        action
        for statement in by_sid.values()
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    ]
    glue_writes = [
        action
        for action in actions
        if action.startswith("glue:") and not action.startswith(("glue:Get", "glue:BatchGet"))
    ]
    assert glue_writes == [], "the query helper never uses CTAS (ctas_approach=False)"

    # Tables are read through Lake Formation's column grants, never from the warehouse itself
    # (docs/adr/0014-sensitive-columns-in-lake-formation.md).
    assert by_sid["ReadTheTablesThroughLakeFormation"]["Action"] == "lakeformation:GetDataAccess"
    reads = [
        _sub_text(statement["Resource"])
        for statement in by_sid.values()
        if "s3:GetObject" in statement["Action"]
    ]
    assert reads == ["${AthenaResultsBucket.Arn}/results/*"]
    results = by_sid["WriteQueryResults"]
    assert "s3:PutObject" in results["Action"]
    assert _sub_text(results["Resource"]) == "${AthenaResultsBucket.Arn}/results/*"
    writes_anywhere = [
        (sid, action)
        for sid, statement in by_sid.items()
        for action in statement["Action"]
        if action.startswith("s3:") and action.endswith(("PutObject", "DeleteObject"))
    ]
    assert {sid for sid, _action in writes_anywhere} == {"WriteQueryResults"}

    key = by_sid["UseTheDataKey"]
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(key["Action"])
    assert key["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert "kms:Encrypt" not in key["Action"] and "kms:*" not in key["Action"]


def test_the_state_machine_may_read_the_job_outcomes(pipeline: dict[str, Any]) -> None:
    statement = next(
        statement
        for name, statement in _statements(pipeline)
        if name == "StateMachineRole" and statement.get("Sid") == "ReadJobOutcomes"
    )
    assert statement["Action"] == "s3:GetObject"
    assert _sub_text(statement["Resource"]).endswith("/_outcomes/*")
    substitutions = pipeline["Resources"]["PipelineStateMachine"]["Properties"][
        "DefinitionSubstitutions"
    ]
    assert _import_of(substitutions["OutcomeBucket"]) == "WarehouseBucket"


def test_the_late_file_check_runs_on_a_schedule_and_its_alarm_tells_late_from_silent(
    pipeline: dict[str, Any],
) -> None:
    resources = pipeline["Resources"]
    schedule = resources["LateFileSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["LateFileFunction", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["LateFileSchedulerRole", "Arn"]}
    text, variables = target["Input"]["Fn::Sub"]
    event = json.loads(text.replace("${LateFileFeed}", "transactions").replace("${Database}", "db"))
    assert event == {
        "feed": "transactions",
        "namespace": "db",
        "now": "<aws.scheduler.scheduled-time>",
    }
    assert _import_of(variables["Database"]) == "GlueDatabase"
    # The feed named by default has a feed file, and the handler named exists.
    assert pipeline["Parameters"]["LateFileFeed"]["Default"] in packaged_feeds()
    function = resources["LateFileFunction"]["Properties"]
    module, _, name = function["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    assert function["Runtime"].startswith("python3.1")

    alarm = resources["LateFileAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRIC_NAMESPACE, FEED_LATE)
    assert alarm["Dimensions"] == [{"Name": "Feed", "Value": {"Ref": "LateFileFeed"}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    # A period holds three checks; a check that stops reporting is INSUFFICIENT_DATA, not late.
    assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 900
    assert alarm["TreatMissingData"] == "missing"
    for actions in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        assert [_import_of(action) for action in alarm[actions]] == ["FailureTopicArn"], actions


def test_the_late_file_check_may_read_and_put_metrics_and_be_invoked_by_its_schedule_only(
    pipeline: dict[str, Any],
) -> None:
    resources = pipeline["Resources"]
    function = resources["LateFileFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["LateFileFunctionRole", "Arn"]}
    statements = {
        statement["Sid"]: statement
        for name, statement in _statements(pipeline)
        if name == "LateFileFunctionRole"
    }
    assert set(statements) == {"ReadFilesCompleted", "PublishFeedLate", "FunctionLog", "Tracing"}
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert set(statements["Tracing"]["Action"]) == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert statements["ReadFilesCompleted"]["Action"] == "cloudwatch:GetMetricData"
    publish = statements["PublishFeedLate"]
    assert publish["Action"] == "cloudwatch:PutMetricData"
    assert publish["Condition"] == {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}
    assert _sub_text(statements["FunctionLog"]["Resource"]) == "${LateFileLogGroup.Arn}:*"
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "LateFileLogGroup"}}
    trust = resources["LateFileFunctionRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]

    scheduler = resources["LateFileSchedulerRole"]["Properties"]
    trust = scheduler["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    [invoke] = [s for name, s in _statements(pipeline) if name == "LateFileSchedulerRole"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == {"Fn::GetAtt": ["LateFileFunction", "Arn"]}


def test_the_late_file_function_runs_the_wheel_that_make_package_copies_for_it(
    pipeline: dict[str, Any],
) -> None:
    code = pipeline["Resources"]["LateFileFunction"]["Properties"]["Code"]
    assert _import_of(code["S3Bucket"]) == "ArtifactsBucket"
    key = _sub_text(code["S3Key"])
    assert key == "releases/${PackageVersion}/lambda/sluiceway-${PackageVersion}.zip"
    makefile = (REPOSITORY / "Makefile").read_text()
    copied = "cp dist/sluiceway-$(VERSION)-py3-none-any.whl dist/lambda/sluiceway-$(VERSION).zip"
    assert copied in makefile
    # `make deploy` uploads dist/ as releases/<version>/, and the feed files ride in the wheel.
    assert 'aws s3 sync dist/ "s3://$$artifacts/releases/$(VERSION)/"' in makefile
    assert "data/feeds/*" in (REPOSITORY / "setup.cfg").read_text()


def test_the_athena_workgroup_cancels_a_query_past_a_parameterized_scan_cutoff(
    storage: dict[str, Any],
) -> None:
    """A query that forgets its day filter stops at 100 GB (about two months of data) instead
    of scanning the whole history; the deploying guide documents the parameter's default."""
    configuration = storage["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert configuration["BytesScannedCutoffPerQuery"] == {
        "Ref": "AthenaBytesScannedCutoffPerQuery"
    }
    assert configuration["EnforceWorkGroupConfiguration"] is True
    parameter = storage["Parameters"]["AthenaBytesScannedCutoffPerQuery"]
    assert parameter["Type"] == "Number"
    assert int(parameter["Default"]) == 100 * 1024**3
    assert int(parameter["MinValue"]) == 10_000_000  # Athena's own minimum, 10 MB
    guide = (TEMPLATES.parents[1] / "docs" / "deploying.md").read_text(encoding="utf-8")
    assert "| AthenaBytesScannedCutoffPerQuery | 107374182400 (100 GiB) |" in guide
