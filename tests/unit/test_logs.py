"""JSON log lines carry run id and job, and never a full account number."""

import json
import logging

import pytest

from sluiceway.logs import configure_logging, get_logger, log_event, mask_account

pytestmark = pytest.mark.unit


def test_account_numbers_keep_only_their_last_four_characters():
    assert mask_account("DE89000000037000000803") == "*" * 18 + "0803"


def test_log_line_is_json_with_context_and_masked_accounts(capsys: pytest.CaptureFixture):
    run_id = configure_logging("ingest", "INFO")
    log_event(get_logger("test"), "account DE89000000037000000803 rejected", ingest_id="ing_1")
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["run_id"] == run_id and entry["job"] == "ingest" and entry["ingest_id"] == "ing_1"
    assert "DE89000000037000000803" not in entry["msg"] and entry["msg"].endswith("0803 rejected")
    logging.getLogger("sluiceway").handlers.clear()
