"""The CloudFormation templates agree with the definitions, the job contract and the rules.

`make lint-infra` runs cfn-lint, checkov, asl-validator and hadolint; these tests check what
those tools cannot know: that every `${Placeholder}` of a definition is substituted, that the
Glue jobs get the argument names the job scripts parse, that the landing rule hands the
starter the fields it reads, and that no IAM policy allows a wildcard action.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from sluiceway.orchestration import PIPELINE_DEFINITION, STARTER_DEFINITION
from sluiceway.orchestration.asl import placeholders
from sluiceway.orchestration.template import render_template

pytestmark = pytest.mark.infra

TEMPLATES = PIPELINE_DEFINITION.parents[1] / "cloudformation"


def rendered(name: str, tmp_path: Path) -> dict[str, Any]:
    output = tmp_path / name
    render_template(TEMPLATES / name, output)
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
