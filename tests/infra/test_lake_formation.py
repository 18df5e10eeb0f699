"""The Lake Formation sensitivity tags and grants of the rendered templates (issue 21 item 4).

What cfn-lint and checkov cannot know: that the columns tagged `sensitive` are exactly the
contract's sensitive columns of tables the code defines; that every other column, also of a
table the jobs create after the deploy, inherits `public` from the database; that the
analysts' grants match `public` only, so the columns they may SELECT (the tags resolved as
Lake Formation resolves them: a column's own tag over its table's over its database's) leave
out every sensitive column; that the analysts get nothing before the sensitive columns are
tagged; that no IAMAllowedPrincipals grant or direct S3 read bypasses the grants; and that
every job role reaches every column. Only AWS can prove them further (docs/deploying.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from sluiceway import contract as c
from sluiceway.orchestration import PIPELINE_DEFINITION
from sluiceway.orchestration.template import render_template
from sluiceway.tables import DEFINITIONS, TRANSACTIONS

pytestmark = pytest.mark.infra

TEMPLATES = PIPELINE_DEFINITION.parents[1] / "cloudformation"
TAG_KEY = "sluiceway_${EnvironmentName}_sensitivity"
IMPORTED_TAG_KEY = {"Fn::ImportValue": {"Fn::Sub": "${StorageStackName}-SensitivityTagKey"}}
JOB_ROLES = {
    "pipeline.yaml": ("GlueJobRole", "BatchJobRole", "EmrJobRole"),
    "streaming.yaml": ("StreamJobRole",),
}


def rendered(name: str, tmp_path: Path) -> dict[str, Any]:
    output = tmp_path / name
    render_template(TEMPLATES / name, output)
    template, errors = decode_str(output.read_text())
    assert not errors, errors
    return template


@pytest.fixture
def storage(tmp_path: Path) -> dict[str, Any]:
    return rendered("storage.yaml", tmp_path)


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def tag_value(association: dict[str, Any]) -> str:
    (tag,) = association["Properties"]["LFTags"]
    assert tag["TagKey"] == {"Fn::Sub": TAG_KEY}
    (value,) = tag["TagValues"]
    return str(value)


def column_tags(storage: dict[str, Any]) -> dict[tuple[str, str], str]:
    """Each column of every table the code defines, with the sensitivity tag Lake Formation
    resolves for it from the template's associations (column over table over database)."""
    database_tag = None
    table_tags: dict[str, str] = {}
    own_tags: dict[tuple[str, str], str] = {}
    for association in of_type(storage, "AWS::LakeFormation::TagAssociation").values():
        resource = association["Properties"]["Resource"]
        value = tag_value(association)
        if "Database" in resource:
            assert resource["Database"]["Name"] == {"Ref": "GlueDatabase"}
            database_tag = value
        elif "Table" in resource:
            table_tags[resource["Table"]["Name"]] = value
        else:
            columns = resource["TableWithColumns"]
            assert columns["DatabaseName"] == {"Ref": "GlueDatabase"}
            for column in columns["ColumnNames"]:
                own_tags[(columns["Name"], column)] = value
    assert database_tag is not None, "tables created after the deploy need an inherited tag"
    return {
        (table, column): own_tags.get((table, column), table_tags.get(table, database_tag))
        for table, definition in DEFINITIONS.items()
        for column, _type in definition.columns
    }


def expression_values(grant: dict[str, Any]) -> tuple[str, set[str]]:
    policy = grant["Properties"]["Resource"]["LFTagPolicy"]
    (condition,) = policy["Expression"]
    return policy["ResourceType"], set(condition["TagValues"])


def test_the_contracts_sensitive_columns_are_tagged_sensitive_and_every_other_column_public(
    storage: dict[str, Any],
) -> None:
    (tag,) = of_type(storage, "AWS::LakeFormation::Tag").values()
    assert tag["Properties"]["TagKey"] == {"Fn::Sub": TAG_KEY}
    assert set(tag["Properties"]["TagValues"]) == {"public", "sensitive"}
    tags = column_tags(storage)
    sensitive = {column.name for column in c.COLUMNS if column.sensitive}
    assert sensitive == {"account_id", "counterparty_id"}
    assert {key for key, value in tags.items() if value == "sensitive"} == {
        (TRANSACTIONS, name) for name in sensitive
    }
    assert {value for key, value in tags.items() if value != "sensitive"} == {"public"}
    # Every column named by an association is a column the code creates.
    for association in of_type(storage, "AWS::LakeFormation::TagAssociation").values():
        columns = association["Properties"]["Resource"].get("TableWithColumns")
        if columns:
            defined = {name for name, _type in DEFINITIONS[columns["Name"]].columns}
            assert set(columns["ColumnNames"]) <= defined


def test_analysts_may_select_every_column_but_the_sensitive_ones(
    storage: dict[str, Any],
) -> None:
    grants = {
        name: grant
        for name, grant in of_type(storage, "AWS::LakeFormation::PrincipalPermissions").items()
        if grant["Properties"]["Principal"]["DataLakePrincipalIdentifier"]
        == {"Fn::GetAtt": ["AnalystRole", "Arn"]}
    }
    by_type = {expression_values(grant)[0]: grant for grant in grants.values()}
    assert set(by_type) == {"DATABASE", "TABLE"} and len(grants) == 2, "tag policies only"
    table = by_type["TABLE"]["Properties"]
    assert set(table["Permissions"]) == {"SELECT", "DESCRIBE"}
    assert by_type["DATABASE"]["Properties"]["Permissions"] == ["DESCRIBE"]
    for grant in grants.values():
        assert grant["Properties"]["PermissionsWithGrantOption"] == []
    _, allowed = expression_values(by_type["TABLE"])
    tags = column_tags(storage)
    selectable = {key for key, value in tags.items() if value in allowed}
    assert selectable == {key for key, value in tags.items() if value != "sensitive"}
    assert (TRANSACTIONS, "account_id") not in selectable
    assert (TRANSACTIONS, "counterparty_id") not in selectable
    assert (TRANSACTIONS, "amount") in selectable and len(selectable) > 50


def test_analysts_get_nothing_before_the_sensitive_columns_are_tagged(
    storage: dict[str, Any],
) -> None:
    """On the first deploy the tables do not exist, so neither can their column tags: the
    analysts' grants wait for the same condition and depend on the tags (fail closed)."""
    resources = storage["Resources"]
    assert storage["Conditions"]["TablesExist"] == {"Fn::Equals": [{"Ref": "TablesExist"}, "true"]}
    assert storage["Parameters"]["TablesExist"]["Default"] == "false"
    column_associations = [
        name
        for name, resource in of_type(storage, "AWS::LakeFormation::TagAssociation").items()
        if "TableWithColumns" in resource["Properties"]["Resource"]
    ]
    assert column_associations
    for name in column_associations:
        assert resources[name]["Condition"] == "TablesExist"
    for name in ("AnalystDescribesPublicDatabase", "AnalystSelectsPublicColumns"):
        assert resources[name]["Condition"] == "TablesExist"
        depends = resources[name]["DependsOn"]
        assert set(column_associations) <= set([depends] if isinstance(depends, str) else depends)
    unconditional = [
        name
        for name, resource in resources.items()
        if resource["Type"].startswith("AWS::LakeFormation::") and "Condition" not in resource
    ]
    assert sorted(unconditional) == [
        "DatabaseColumnsArePublicUnlessTagged",
        "SensitivityTag",
        "WarehouseInLakeFormation",
    ]


def test_nothing_bypasses_the_grants(storage: dict[str, Any]) -> None:
    """Without IAMAllowedPrincipals on new tables and without a direct S3 read, Lake
    Formation's grants are the only way to the tables' data."""
    resources = storage["Resources"]
    database = resources["GlueDatabase"]["Properties"]["DatabaseInput"]
    assert database["CreateTableDefaultPermissions"] == []
    location = resources["WarehouseInLakeFormation"]["Properties"]
    assert location["ResourceArn"] == {"Fn::GetAtt": ["WarehouseBucket", "Arn"]}
    assert location["UseServiceLinkedRole"] is False
    assert location["RoleArn"] == {"Fn::GetAtt": ["LakeFormationDataAccessRole", "Arn"]}
    statements = resources["AnalystAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    for statement in statements:
        resources_named = statement["Resource"]
        text = str(resources_named)
        if "WarehouseBucket" in text and "ListBucket" not in str(statement["Action"]):
            pytest.fail(f"analysts read the warehouse directly: {statement}")


@pytest.mark.parametrize("template_name", sorted(JOB_ROLES))
def test_every_job_role_reaches_every_column_and_the_warehouse(
    template_name: str, tmp_path: Path
) -> None:
    template = rendered(template_name, tmp_path)
    grants = of_type(template, "AWS::LakeFormation::PrincipalPermissions")
    for role in JOB_ROLES[template_name]:
        mine = [
            grant["Properties"]
            for grant in grants.values()
            if grant["Properties"]["Principal"]["DataLakePrincipalIdentifier"]
            == {"Fn::GetAtt": [role, "Arn"]}
        ]
        by_kind: dict[str, dict[str, Any]] = {}
        for grant in mine:
            resource = grant["Resource"]
            if "LFTagPolicy" in resource:
                policy = resource["LFTagPolicy"]
                (condition,) = policy["Expression"]
                assert condition["TagKey"] == IMPORTED_TAG_KEY
                assert set(condition["TagValues"]) == {"public", "sensitive"}, role
                by_kind[policy["ResourceType"]] = grant
            else:
                by_kind["DataLocation"] = grant
        assert set(by_kind) == {"DATABASE", "TABLE", "DataLocation"}, role
        assert {"CREATE_TABLE", "DESCRIBE"} <= set(by_kind["DATABASE"]["Permissions"])
        assert {"SELECT", "INSERT", "DELETE", "ALTER", "DESCRIBE"} <= set(
            by_kind["TABLE"]["Permissions"]
        )
        assert by_kind["DataLocation"]["Permissions"] == ["DATA_LOCATION_ACCESS"]
        assert "WarehouseBucket" in str(by_kind["DataLocation"]["Resource"])
