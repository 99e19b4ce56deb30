"""Refuse to damage: the package declares none of its DataJoint 2 tables in a DataJoint 0.14 schema."""

from __future__ import annotations

import warnings

import datajoint as dj
import pytest

from mei import fabrik, main
from mei.pipeline import database as db
from mei.pipeline.legacy_bridge import LegacySchemaError
from mei.pipeline.legacy_bridge.guard import legacy_markers

pytestmark = pytest.mark.slow  # DataJoint 0.14 in its own environment, MariaDB and an S3 server


@pytest.fixture
def dj2(legacy_lab, tmp_path):
    """A DataJoint 2 connection to the legacy lab's MariaDB."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance = db.instance("mysql", host=legacy_lab.host, port=legacy_lab.port, store_location=tmp_path / "store",
                               safemode=False)
    yield instance
    instance.connection.close()


def test_activate_refuses_a_datajoint_014_schema(legacy_lab, dj2):
    for module in (fabrik, main):
        with pytest.raises(LegacySchemaError) as raised:
            module.activate(legacy_lab.fabrik, connection=dj2.connection)
        message = str(raised.value)
        assert f"schema {legacy_lab.fabrik!r}" in message and "DataJoint 0.14 tables" in message
        assert "nothing was written" in message and "legacy_bridge" in message and "mei legacy import" in message
        assert raised.value.schema == legacy_lab.fabrik
        assert "table `~log`" in raised.value.markers and "table `~external_minio`" in raised.value.markers
    assert legacy_lab.before == legacy_lab.snapshot()


def test_a_lab_template_is_not_declared_in_a_datajoint_014_schema(legacy_lab, dj2):
    schema = dj.Schema(legacy_lab.mei, connection=dj2.connection)
    with pytest.raises(LegacySchemaError, match=f"refusing to declare TrainedModel in schema '{legacy_lab.mei}'"):

        @schema
        class TrainedModel(fabrik.TrainedModelBase):
            pass

    fabrik_schema = dj.Schema(legacy_lab.fabrik, connection=dj2.connection)
    with pytest.raises(LegacySchemaError, match=f"refusing to declare Model in schema '{legacy_lab.fabrik}'"):

        @fabrik_schema
        class Model(fabrik.ModelMixin, dj.Manual):  # a 0.14 table `model` is there: DataJoint 2 would add lineage
            pass

    with pytest.raises(LegacySchemaError, match="refusing to declare Recording in"):

        @fabrik_schema
        class Recording(fabrik.SeedMixin, dj.Manual):  # a new table
            pass

    with pytest.raises(LegacySchemaError, match="refusing to declare MEI in"):

        @schema
        class MEI(main.MEITemplate):
            trained_model_table = fabrik.Model  # never looked at: the schema is refused first
            objective_table = fabrik.Model

    assert legacy_lab.before == legacy_lab.snapshot()


def test_markers_name_what_is_legacy(legacy_lab, dj2):
    def query(sql, args):
        return dj2.connection.query(sql, args=args).fetchall()

    markers = legacy_markers(query, legacy_lab.mei)
    assert "table `~external_files`" in markers
    assert "column `__m_e_i`.`mei` of DataJoint 0.14 type attach@files" in markers
    assert "column `#m_e_i_method`.`method_config` longblob of serialized DataJoint 0.14 blobs" in markers
    assert legacy_markers(query, "meitest_no_such_schema") == []
