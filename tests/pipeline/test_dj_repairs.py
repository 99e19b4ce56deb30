"""Store columns (``<attach@store>``, ``<blob@store>``) round trip on every backend, MariaDB included."""

from __future__ import annotations

import datajoint as dj
import numpy as np

from mei.pipeline import dj_repairs


def declare(schema):
    @schema
    class Files(dj.Manual):
        definition = """
        file_id: int32
        ---
        attachment: <attach@mei>
        array: <blob@mei>
        config: <blob>
        """

    return Files


def test_attach_and_blob_store_columns_round_trip(backend, private_tmp, monkeypatch):
    dj_repairs.install()
    monkeypatch.chdir(private_tmp)  # fetched attachments land in the working directory
    Files = declare(backend.schema("repairs"))
    heading = Files().heading.attributes
    assert heading["attachment"].json and heading["array"].json  # stored as json metadata on every backend
    assert not heading["config"].json  # an in-table blob stays a blob
    source = private_tmp / "upload" / "mei_abc.pth.tar"
    source.parent.mkdir()
    payload = bytes(range(256)) * 3
    source.write_bytes(payload)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    Files.insert1({"file_id": 1, "attachment": str(source), "array": array, "config": {"lr": 0.1}})
    Files.insert([{"file_id": 2, "attachment": str(source), "array": -array, "config": [1, 2]}])
    assert len(Files()) == 2
    row = (Files & {"file_id": 1}).fetch1()
    with open(row["attachment"], "rb") as file:  # the attachment, downloaded under its own name
        assert file.read() == payload
    assert row["attachment"].endswith("mei_abc.pth.tar") and row["attachment"] != str(source)
    np.testing.assert_array_equal(row["array"], array)
    assert row["config"] == {"lr": 0.1}
    np.testing.assert_array_equal((Files & {"file_id": 2}).fetch1("array"), -array)


def test_the_repair_marks_only_json_stored_codec_columns(backend):
    dj_repairs.install()
    dj_repairs.install()  # idempotent: one wrapper
    from datajoint.heading import Heading

    assert getattr(Heading._init_from_database, dj_repairs._MARK)
    Files = declare(backend.schema("repairs"))
    attributes = Files().heading.attributes
    assert [name for name, attr in attributes.items() if dj_repairs.storage_is_json(attr)] == ["attachment", "array"]
    assert dj_repairs.repair_heading(Files().heading) == 0  # already repaired when loaded
    assert not attributes["file_id"].json and attributes["file_id"].codec is None
