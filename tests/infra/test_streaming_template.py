"""The streaming stack says what the stream job, MSK and the alarms need, in both of its shapes.

`make lint-infra` runs cfn-lint and checkov over infra/cloudformation/streaming.yaml; these
tests check what they cannot know: that the job's checkpoint lives under the warehouse, that it
reads with MSK IAM authentication, that it gets the argument names the job parses, that its
role names the cluster's own topic and group ARNs and no `*` for data, that both alarms watch
the metric names the job and MSK publish, and that the template works with a new MSK
Serverless cluster and with an existing cluster. The template is resolved with a small
evaluator of the intrinsic functions it uses, for given parameters, so a test sees the values
AWS would see (docs/adr/0012-streaming-on-aws.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from sluiceway.job_arguments import StreamArgs, job_parser
from sluiceway.orchestration import PIPELINE_DEFINITION
from sluiceway.orchestration.metrics import (
    METRIC_NAMESPACE,
    STREAM_BATCH_SECONDS,
    STREAM_LAG,
    stream_metric_data,
)
from sluiceway.orchestration.pipeline import REPOSITORY
from sluiceway.orchestration.template import render_template
from sluiceway.stream import parse_kafka_options
from sluiceway.stream.run import checkpoint_location

pytestmark = pytest.mark.infra

TEMPLATE = PIPELINE_DEFINITION.parents[1] / "cloudformation" / "streaming.yaml"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
STORAGE = "sluiceway-dev-storage"
# What the storage stack exports, as the streaming stack imports it.
EXPORTS = {
    f"{STORAGE}-WarehouseBucket": "sluiceway-dev-warehouse-bucket",
    f"{STORAGE}-ArtifactsBucket": "sluiceway-dev-artifacts-bucket",
    f"{STORAGE}-GlueDatabase": "sluiceway_dev",
    f"{STORAGE}-DataKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/data-key",
    f"{STORAGE}-LeaseTable": "sluiceway-dev-leases",
    f"{STORAGE}-LeaseTableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/sluiceway-dev-leases",
    f"{STORAGE}-FailureTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:sluiceway-dev-failures",
}
NETWORK = {
    "SubnetIds": ["subnet-a", "subnet-b"],
    "SecurityGroupIds": ["sg-kafka"],
    "JobAvailabilityZone": f"{REGION}a",
}
BOOTSTRAP = "boot-abc.c1.kafka-serverless.eu-west-1.amazonaws.com:9098"
EXISTING = (
    f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/shared-kafka/0a1b2c3d-4e5f-6789-abcd-ef0123456789-9"
)
# The id MSK gives a new cluster (the last part of its ARN), as the evaluator invents it.
NEW_CLUSTER_ID = "11111111-2222-3333-4444-555555555555-s1"

# The arguments jobs/stream_transactions.py reads; everything else in DefaultArguments is Glue's.
STREAM_JOB_ARGUMENTS = {
    "--profile",
    "--warehouse",
    "--namespace",
    "--lease-table",
    "--topic",
    "--bootstrap-servers",
    "--consumer-group",
    "--checkpoint",
    "--trigger-seconds",
    "--kafka-options",
}
GLUE_ARGUMENTS = {
    "--job-language",
    "--datalake-formats",
    "--conf",
    "--additional-python-modules",
    "--extra-jars",
    "--TempDir",
    "--job-bookmark-option",
    "--enable-metrics",
    "--enable-observability-metrics",
    "--enable-continuous-cloudwatch-log",
}
MSK_IAM_OPTIONS = {
    "kafka.security.protocol": "SASL_SSL",
    "kafka.sasl.mechanism": "AWS_MSK_IAM",
    "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "kafka.sasl.client.callback.handler.class": (
        "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
    ),
}


class Stack:
    """The template as CloudFormation would resolve it for these parameters.

    Only the intrinsic functions streaming.yaml uses are known; anything else fails the test.
    A resource's `Ref` is its name (the job, the log group) or, for the MSK cluster, an ARN
    built from its ClusterName, as AWS returns them.
    """

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.template = template
        unknown = set(parameters) - set(template["Parameters"])
        assert not unknown, f"not parameters of the template: {unknown}"
        self.parameters = {
            name: spec.get("Default") for name, spec in template["Parameters"].items()
        }
        self.parameters |= parameters
        missing = [name for name, value in self.parameters.items() if value is None]
        assert not missing, f"parameters without a value: {missing}"
        self.conditions = {
            name: self.value(expression) for name, expression in template["Conditions"].items()
        }

    def exists(self, logical_id: str) -> bool:
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.conditions[condition]

    def properties(self, logical_id: str) -> dict[str, Any]:
        assert self.exists(logical_id), f"{logical_id} is not created with these parameters"
        return self.value(self.template["Resources"][logical_id]["Properties"])

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        properties = self.properties(name)
        kind = self.template["Resources"][name]["Type"]
        if kind == "AWS::MSK::ServerlessCluster":
            cluster = properties["ClusterName"]
            return f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/{cluster}/{NEW_CLUSTER_ID}"
        if kind == "AWS::Glue::Job":
            return properties["Name"]
        if kind == "AWS::Logs::LogGroup":
            return properties["LogGroupName"]
        if kind == "AWS::Glue::Connection":
            return properties["ConnectionInput"]["Name"]
        if kind == "AWS::Glue::SecurityConfiguration":
            return properties["Name"]
        return name

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template["Resources"][name]["Type"]
        if (kind, attribute) == ("AWS::Logs::LogGroup", "Arn"):
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{self.ref(name)}:*"
        if (kind, attribute) == ("AWS::IAM::Role", "Arn"):
            return f"arn:aws:iam::{ACCOUNT}:role/{name}"
        raise AssertionError(f"the evaluator does not know {name}.{attribute}")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self.get_att(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, argument)] = node.items()
            function = {
                "Ref": lambda: self.ref(argument),
                "Fn::If": lambda: self.value(
                    argument[1] if self.conditions[argument[0]] else argument[2]
                ),
                "Fn::Equals": lambda: self.value(argument[0]) == self.value(argument[1]),
                "Fn::Not": lambda: not self.value(argument[0]),
                "Fn::Select": lambda: self.value(argument[1])[int(argument[0])],
                "Fn::Split": lambda: self.value(argument[1]).split(argument[0]),
                "Fn::GetAtt": lambda: self.get_att(*argument),
                "Fn::ImportValue": lambda: EXPORTS[self.value(argument)],
                "Fn::Sub": lambda: (
                    self.sub(argument, {})
                    if isinstance(argument, str)
                    else self.sub(argument[0], self.value(argument[1]))
                ),
            }.get(key)
            if function is not None:
                return function()
            assert not key.startswith("Fn::"), f"the evaluator does not know {key}"
        return {key: self.value(item) for key, item in node.items()}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("streaming") / "streaming.yaml"
    render_template(TEMPLATE, output)
    assert "{{" not in output.read_text(), "every conf token is rendered"
    decoded, errors = decode_str(output.read_text())
    assert not errors, errors
    return decoded


def new_cluster(template: dict[str, Any], **parameters: Any) -> Stack:
    """The second deploy of a stack with its own MSK Serverless cluster."""
    return Stack(template, {**NETWORK, "BootstrapServers": BOOTSTRAP, **parameters})


def existing_cluster(template: dict[str, Any], **parameters: Any) -> Stack:
    return Stack(
        template,
        {**NETWORK, "ExistingClusterArn": EXISTING, "BootstrapServers": BOOTSTRAP, **parameters},
    )


def role_statements(stack: Stack) -> dict[str, dict[str, Any]]:
    role = stack.properties("StreamJobRole")
    statements = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert len(by_sid) == len(statements), "every statement has its own Sid"
    return by_sid


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_checkpoint_is_on_s3_under_the_warehouse_bucket_one_folder_per_topic(
    template: dict[str, Any],
) -> None:
    stack = new_cluster(template, Topic="partner-transactions")
    arguments = stack.properties("StreamJob")["DefaultArguments"]
    warehouse = arguments["--warehouse"]
    assert warehouse == "s3://sluiceway-dev-warehouse-bucket/"
    checkpoint = arguments["--checkpoint"]
    assert checkpoint == f"{warehouse}_checkpoints/sluiceway_dev/stream/partner-transactions"
    # The same place the job picks when it is not told (so a run started by hand agrees).
    argv = [item for name, value in arguments.items() for item in (name, str(value))]
    args = StreamArgs.parse([a for a in argv if a != checkpoint and a != "--checkpoint"], {})
    assert checkpoint_location(args.settings, args.options) == checkpoint
    # The role may write there, and nowhere else in S3 but Glue's temporary folder.
    statements = role_statements(stack)
    writes = {
        sid: statement["Resource"]
        for sid, statement in statements.items()
        if any(action in as_list(statement["Action"]) for action in ["s3:PutObject"])
    }
    assert writes == {
        "ReadWriteWarehouse": "arn:aws:s3:::sluiceway-dev-warehouse-bucket/*",
        "GlueTemporaryDirectory": "arn:aws:s3:::sluiceway-dev-artifacts-bucket/glue-temp/*",
    }
    assert arguments["--TempDir"] == "s3://sluiceway-dev-artifacts-bucket/glue-temp/"


def test_the_job_reads_the_topic_with_msk_iam_authentication(template: dict[str, Any]) -> None:
    stack = new_cluster(template)
    job = stack.properties("StreamJob")
    arguments = job["DefaultArguments"]
    # Glue job arguments are unique keys: the options travel as one comma-separated argument,
    # read by the job's own parser.
    assert parse_kafka_options([arguments["--kafka-options"]]) == MSK_IAM_OPTIONS
    assert arguments["--kafka-options"].count("=") == len(MSK_IAM_OPTIONS)
    assert arguments["--bootstrap-servers"] == BOOTSTRAP
    # The IAM login module is not part of Spark's Kafka connector: it comes from the release.
    jar = arguments["--extra-jars"]
    assert re.fullmatch(
        r"s3://sluiceway-dev-artifacts-bucket/releases/0\.1\.0/jars/aws-msk-iam-auth-[0-9.]+-all\.jar",
        jar,
    ), jar
    assert jar.startswith("s3://sluiceway-dev-artifacts-bucket/releases/")
    release_reads = role_statements(stack)["ReadTheRelease"]
    assert release_reads["Resource"] == "arn:aws:s3:::sluiceway-dev-artifacts-bucket/releases/*"
    # MSK Serverless accepts IAM clients only; the cluster must say so.
    cluster = stack.properties("MskCluster")
    assert cluster["ClientAuthentication"] == {"Sasl": {"Iam": {"Enabled": True}}}


def test_the_job_is_a_glue_5_streaming_job_that_runs_the_released_script(
    template: dict[str, Any],
) -> None:
    stack = new_cluster(template, PackageVersion="1.2.3", TriggerSeconds=5)
    job = stack.properties("StreamJob")
    assert job["Command"]["Name"] == "gluestreaming"
    assert job["Command"]["ScriptLocation"] == (
        "s3://sluiceway-dev-artifacts-bucket/releases/1.2.3/jobs/stream_transactions.py"
    )
    assert job["GlueVersion"] in {"5.0", "5.1"}
    assert job["ExecutionProperty"]["MaxConcurrentRuns"] == 1, "one query per checkpoint"
    assert "Timeout" not in job, "a streaming job runs until stopped"
    arguments = job["DefaultArguments"]
    assert arguments["--profile"] == "glue"
    assert arguments["--namespace"] == "sluiceway_dev"
    assert arguments["--lease-table"] == "sluiceway-dev-leases"
    assert arguments["--trigger-seconds"] == 5
    assert arguments["--datalake-formats"] == "iceberg"
    assert arguments["--additional-python-modules"] == (
        "s3://sluiceway-dev-artifacts-bucket/releases/1.2.3/sluiceway-1.2.3-py3-none-any.whl"
    )
    conf = arguments["--conf"]
    assert "spark.sql.catalog.lake.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog" in conf
    assert "spark.sql.catalog.lake.warehouse=s3://sluiceway-dev-warehouse-bucket/" in conf
    # In the VPC of the brokers, through the network connection.
    connection = stack.properties("StreamNetworkConnection")["ConnectionInput"]
    assert job["Connections"] == {"Connections": [connection["Name"]]}
    network = connection["PhysicalConnectionRequirements"]
    assert network == {
        "SubnetId": "subnet-a",
        "SecurityGroupIdList": ["sg-kafka"],
        "AvailabilityZone": f"{REGION}a",
    }
    assert stack.properties("MskCluster")["VpcConfigs"] == [
        {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroups": ["sg-kafka"]}
    ]


def test_the_job_gets_exactly_the_arguments_the_stream_job_parses(
    template: dict[str, Any],
) -> None:
    arguments = new_cluster(template).properties("StreamJob")["DefaultArguments"]
    assert set(arguments) - GLUE_ARGUMENTS == STREAM_JOB_ARGUMENTS
    assert set(arguments) >= GLUE_ARGUMENTS
    assert (REPOSITORY / "jobs" / "stream_transactions.py").is_file()
    # The job ignores unknown arguments (Glue adds its own), so ask its parser which it knows.
    known = {option for action in job_parser("stream")._actions for option in action.option_strings}
    unread = STREAM_JOB_ARGUMENTS - known
    # --consumer-group: the group the job commits published offsets to, for MSK's lag metric
    # (docs/adr/0012-streaming-on-aws.md); without it the MSK lag alarm never sees data.
    assert not unread, f"streaming.yaml passes {sorted(unread)}, which the stream job ignores"


@pytest.mark.parametrize("shape", [new_cluster, existing_cluster], ids=["new", "existing"])
def test_the_role_names_the_clusters_topic_and_group_and_no_wildcard_for_data(
    template: dict[str, Any], shape: Any
) -> None:
    stack = shape(template, Topic="transactions", ConsumerGroup="sluiceway-dev-stream")
    if shape is new_cluster:
        cluster = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/sluiceway-dev/{NEW_CLUSTER_ID}"
    else:
        cluster = EXISTING
    prefix, name_and_id = cluster.split(":cluster/")
    statements = role_statements(stack)
    assert statements["ConnectToTheCluster"]["Resource"] == cluster
    assert statements["ReadTheTopic"]["Resource"] == f"{prefix}:topic/{name_and_id}/transactions"
    assert statements["UseTheConsumerGroups"]["Resource"] == (
        f"{prefix}:group/{name_and_id}/sluiceway-dev-stream*"
    )
    kafka_actions = {
        action
        for statement in statements.values()
        for action in as_list(statement["Action"])
        if action.startswith("kafka")
    }
    assert kafka_actions == {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeCluster",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:ReadData",
        "kafka-cluster:DescribeGroup",
        "kafka-cluster:AlterGroup",
    }, "read only: the job neither writes to nor creates topics"

    data_services = ("kafka-cluster:", "s3:", "glue:", "dynamodb:", "kms:")
    for sid, statement in statements.items():
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), f"{sid}: wildcard action"
        if any(action.startswith(data_services) for action in actions):
            for resource in as_list(statement["Resource"]):
                assert resource != "*" and resource.startswith("arn:aws:"), f"{sid}: {resource}"
                assert not resource.endswith(("::*", ":*/*")), f"{sid}: {resource}"
    # Only the services without resource-level permissions get "*", and metrics are fenced.
    unscoped = {sid for sid, statement in statements.items() if statement["Resource"] == "*"}
    assert unscoped == {"PublishStreamMetrics", "GlueJobMetrics", "DescribeTheVpc"}
    assert statements["PublishStreamMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}
    }
    assert all(
        action.startswith("ec2:Describe") for action in statements["DescribeTheVpc"]["Action"]
    )


@pytest.mark.parametrize("shape", [new_cluster, existing_cluster], ids=["new", "existing"])
def test_the_lag_alarm_watches_msks_metric_for_the_group_the_job_commits_to(
    template: dict[str, Any], shape: Any
) -> None:
    stack = shape(template, Topic="transactions", ConsumerGroup="sluiceway-dev-stream")
    alarm = stack.properties("ConsumerLagAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Kafka", "MaxOffsetLag")
    dimensions = {item["Name"]: item["Value"] for item in alarm["Dimensions"]}
    cluster_name = "sluiceway-dev" if shape is new_cluster else "shared-kafka"
    assert dimensions == {
        "Cluster Name": cluster_name,
        "Consumer Group": "sluiceway-dev-stream",
        "Topic": "transactions",
    }
    if shape is new_cluster:
        assert stack.properties("MskCluster")["ClusterName"] == cluster_name
    arguments = stack.properties("StreamJob")["DefaultArguments"]
    assert arguments["--consumer-group"] == dimensions["Consumer Group"]
    assert arguments["--topic"] == dimensions["Topic"]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == template["Parameters"]["OffsetLagThreshold"]["Default"]
    # Once the group has committed, MSK keeps reporting its lag while the job is down.
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [EXPORTS[f"{STORAGE}-FailureTopicArn"]]


def test_the_batch_duration_alarm_watches_the_metric_the_job_publishes(
    template: dict[str, Any],
) -> None:
    stack = new_cluster(template, Topic="transactions")
    namespace = stack.properties("StreamJob")["DefaultArguments"]["--namespace"]
    # What the job puts for one micro-batch, in the namespace the job is given.
    published = {item["MetricName"]: item for item in stream_metric_data(12.5, 42, namespace)}
    for name, threshold in (
        ("BatchDurationAlarm", "BatchSecondsThreshold"),
        ("StreamLagAlarm", "OffsetLagThreshold"),
    ):
        alarm = stack.properties(name)
        assert alarm["Namespace"] == METRIC_NAMESPACE, name
        assert alarm["MetricName"] in published, f"{name}: the job publishes no such metric"
        # CloudWatch matches the whole set of dimensions, names and values.
        assert alarm["Dimensions"] == published[alarm["MetricName"]]["Dimensions"], name
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Threshold"] == template["Parameters"][threshold]["Default"]
        assert alarm["TreatMissingData"] == "notBreaching", "an idle topic runs no batches"
        assert alarm["AlarmActions"] == [EXPORTS[f"{STORAGE}-FailureTopicArn"]]
    batch = stack.properties("BatchDurationAlarm")
    assert batch["MetricName"] == STREAM_BATCH_SECONDS
    assert published[STREAM_BATCH_SECONDS]["Unit"] == "Seconds"
    assert stack.properties("StreamLagAlarm")["MetricName"] == STREAM_LAG


def test_a_failed_job_run_reaches_the_failure_topic_through_an_alarm(
    template: dict[str, Any],
) -> None:
    stack = new_cluster(template)
    job_name = stack.ref("StreamJob")
    rule = stack.properties("StreamJobFailedRule")
    assert rule["EventPattern"] == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {"jobName": [job_name], "state": ["FAILED", "TIMEOUT", "ERROR"]},
    }
    (target,) = rule["Targets"]
    log_group = stack.get_att("StreamJobRunEventsLogGroup", "Arn")
    assert target["Arn"] == log_group
    # The log group admits exactly this rule.
    policy = stack.properties("StreamJobRunEventsLogPolicy")["PolicyDocument"]
    (statement,) = json.loads(policy)["Statement"]
    assert statement["Resource"] == log_group
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule['Name']}"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    assert template["Resources"]["StreamJobFailedRule"]["DependsOn"] == (
        "StreamJobRunEventsLogPolicy"
    )

    metric_filter = stack.properties("StreamJobFailedMetric")
    assert metric_filter["LogGroupName"] == stack.ref("StreamJobRunEventsLogGroup")
    (transformation,) = metric_filter["MetricTransformations"]
    alarm = stack.properties("StreamJobFailedAlarm")
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (
        alarm["Namespace"],
        alarm["MetricName"],
    )
    assert transformation["Dimensions"] == [{"Key": "JobName", "Value": "$.detail.jobName"}]
    assert alarm["Dimensions"] == [{"Name": "JobName", "Value": job_name}]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
    assert alarm["AlarmActions"] == [EXPORTS[f"{STORAGE}-FailureTopicArn"]]


def test_an_existing_cluster_replaces_the_serverless_one_and_nothing_else(
    template: dict[str, Any],
) -> None:
    new, existing = new_cluster(template), existing_cluster(template)
    assert new.conditions["CreateCluster"] and new.exists("MskCluster")
    assert not existing.conditions["CreateCluster"] and not existing.exists("MskCluster")
    created = {name for name in template["Resources"] if new.exists(name)}
    assert {name for name in template["Resources"] if existing.exists(name)} == created - {
        "MskCluster"
    }
    outputs = template["Outputs"]
    assert new.value(outputs["ClusterArn"]["Value"]) == (
        f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/sluiceway-dev/{NEW_CLUSTER_ID}"
    )
    assert existing.value(outputs["ClusterArn"]["Value"]) == EXISTING


def test_the_job_and_its_alarms_wait_until_the_bootstrap_servers_are_known(
    template: dict[str, Any],
) -> None:
    first = Stack(template, NETWORK)
    assert first.exists("MskCluster") and first.exists("StreamJobRole")
    waiting = {name for name in template["Resources"] if not first.exists(name)}
    assert waiting == {
        "StreamJob",
        "ConsumerLagAlarm",
        "BatchDurationAlarm",
        "StreamLagAlarm",
        "StreamJobRunEventsLogGroup",
        "StreamJobRunEventsLogPolicy",
        "StreamJobFailedRule",
        "StreamJobFailedMetric",
        "StreamJobFailedAlarm",
    }
    second = new_cluster(template)
    assert all(second.exists(name) for name in template["Resources"])
    assert second.properties("StreamJob")["DefaultArguments"]["--bootstrap-servers"] == BOOTSTRAP


def test_every_name_the_readme_and_the_adr_give_is_in_the_template() -> None:
    adr = REPOSITORY / "docs" / "adr" / "0012-streaming-on-aws.md"
    text = adr.read_text(encoding="utf-8")
    source = TEMPLATE.read_text(encoding="utf-8")
    for name in (STREAM_BATCH_SECONDS, "MaxOffsetLag", "--kafka-options", "--consumer-group"):
        assert name in text and name in source, name
    assert Path(TEMPLATE).name in text
