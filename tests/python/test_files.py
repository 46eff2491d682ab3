"""The Files API (volumes), DBFS and the workspace through databricks-sdk."""

import base64
import datetime
import io
import json
import os
from pathlib import Path

import pytest
from databricks.sdk import errors
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.files import DbfsAPI
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType

VOLUME = "/Volumes/files_cat/raw/landing"
CSV = b"id,city\n1,Oslo\n2,Lima\n"
RECORDS = [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}]


@pytest.fixture(scope="module")
def volume_dir(w) -> Path:
    """A managed volume, and its directory on disk."""
    w.catalogs.create(name="files_cat")
    w.schemas.create(name="raw", catalog_name="files_cat")
    info = w.volumes.create(
        catalog_name="files_cat", schema_name="raw", name="landing", volume_type=VolumeType.MANAGED
    )
    yield Path(info.storage_location.removeprefix("file://"))
    w.catalogs.delete("files_cat", force=True)


@pytest.fixture(scope="module")
def stored(w, volume_dir):
    """A CSV that must survive every refused request below."""
    w.files.upload(f"{VOLUME}/keep/cities.csv", io.BytesIO(CSV), overwrite=True)
    return f"{VOLUME}/keep/cities.csv"


def assert_intact(w, stored):
    assert w.files.download(stored).contents.read() == CSV


def test_csv_and_json_round_trip_through_a_volume(w, volume_dir, stored):
    body = json.dumps(RECORDS).encode()
    w.files.upload(f"{VOLUME}/in/records.json", io.BytesIO(body))
    meta = w.files.get_metadata(f"{VOLUME}/in/records.json")
    assert meta.content_length == len(body) and meta.content_type == "application/octet-stream"
    modified = datetime.datetime.strptime(meta.last_modified, "%a, %d %b %Y %H:%M:%S GMT")
    assert abs((datetime.datetime.utcnow() - modified).total_seconds()) < 120
    assert json.loads(w.files.download(f"{VOLUME}/in/records.json").contents.read()) == RECORDS
    assert (volume_dir / "in" / "records.json").read_bytes() == body
    assert w.files.download(stored).contents.read().decode().splitlines()[1] == "1,Oslo"
    # overwrite=False keeps what is there; overwrite=True replaces it whole.
    with pytest.raises(errors.ResourceConflict):
        w.files.upload(f"{VOLUME}/in/records.json", io.BytesIO(b"[]"), overwrite=False)
    assert json.loads(w.files.download(f"{VOLUME}/in/records.json").contents.read()) == RECORDS
    w.files.upload(f"{VOLUME}/in/records.json", io.BytesIO(b"[]"), overwrite=True)
    assert w.files.download(f"{VOLUME}/in/records.json").contents.read() == b"[]"
    w.files.delete(f"{VOLUME}/in/records.json")
    with pytest.raises(errors.NotFound):
        w.files.get_metadata(f"{VOLUME}/in/records.json")
    # Names are percent-encoded in the URL and stored as given.
    w.files.upload(f"{VOLUME}/in/São Paulo #1.csv", io.BytesIO(CSV))
    assert (volume_dir / "in" / "São Paulo #1.csv").read_bytes() == CSV
    assert [e.name for e in w.files.list_directory_contents(f"{VOLUME}/in")] == ["São Paulo #1.csv"]
    assert_intact(w, stored)


def test_directories_list_page_and_refuse_non_empty_deletes(w, volume_dir, stored):
    base = f"{VOLUME}/tree"
    w.files.create_directory(f"{base}/sub/deeper")
    w.files.create_directory(f"{base}/sub/deeper")  # idempotent
    w.files.get_directory_metadata(f"{base}/sub")
    for name in ["a.csv", "b.csv", "c.csv"]:
        w.files.upload(f"{base}/{name}", io.BytesIO(name.encode()))
    entries = list(w.files.list_directory_contents(base, page_size=2))
    assert [(e.name, e.is_directory, e.file_size) for e in entries] == [
        ("a.csv", False, 5),
        ("b.csv", False, 5),
        ("c.csv", False, 5),
        ("sub", True, None),
    ]
    assert entries[0].path == f"{base}/a.csv" and entries[3].path == f"{base}/sub/"
    assert all(e.last_modified > 0 for e in entries)
    with pytest.raises(errors.BadRequest) as refused:
        w.files.delete_directory(f"{base}/sub")
    assert [d.reason for d in refused.value.get_error_info()] == ["FILES_API_DIRECTORY_IS_NOT_EMPTY"]
    w.files.get_directory_metadata(f"{base}/sub/deeper")
    # A file in the way of a directory, and the other way round.
    with pytest.raises(errors.ResourceConflict):
        w.files.create_directory(f"{base}/a.csv")
    with pytest.raises(errors.NotFound):
        w.files.get_directory_metadata(f"{base}/a.csv")
    with pytest.raises(errors.NotFound):
        w.files.download(f"{base}/sub")
    w.files.delete_directory(f"{base}/sub/deeper")
    w.files.delete_directory(f"{base}/sub")
    assert sorted(p.name for p in (volume_dir / "tree").iterdir()) == ["a.csv", "b.csv", "c.csv"]
    with pytest.raises(errors.NotFound):
        w.files.delete(f"{base}/missing.csv")
    assert_intact(w, stored)


def test_ranges_and_unmodified_since(tarn, stored):
    url = f"/api/2.0/fs/files{stored}"
    part = tarn.raw("GET", url, headers={"Range": "bytes=3-6"})
    assert part.status_code == 206 and part.content == CSV[3:7]
    assert part.headers["Content-Range"] == f"bytes 3-6/{len(CSV)}"
    last_modified = tarn.raw("HEAD", url).headers["Last-Modified"]
    tail = tarn.raw("GET", url, headers={"Range": "bytes=8-", "If-Unmodified-Since": last_modified})
    assert tail.status_code == 206 and tail.content == CSV[8:]
    stale = tarn.raw("GET", url, headers={"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert stale.status_code == 412
    assert tarn.raw("GET", url, headers={"Range": f"bytes={len(CSV)}-"}).status_code == 416


def test_uploads_past_the_multipart_threshold_arrive_whole(w, volume_dir):
    # 50 MB and more: the SDK tries presigned multipart URLs, then falls
    # back to a single PUT.
    data = os.urandom((50 << 20) + 7)
    w.files.upload(f"{VOLUME}/big/blob.bin", io.BytesIO(data))
    assert (volume_dir / "big" / "blob.bin").read_bytes() == data
    assert w.files.download(f"{VOLUME}/big/blob.bin").contents.read() == data
    w.files.delete(f"{VOLUME}/big/blob.bin")


def test_bad_paths_are_refused_and_change_nothing(tarn, w, volume_dir, stored, tmp_path):
    # requests removes `..` segments itself, so send them encoded.
    escape = tarn.raw("PUT", f"/api/2.0/fs/files{VOLUME}/%2E%2E/%2E%2E/escaped.txt", data=b"x")
    assert escape.status_code == 400 and escape.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not list(volume_dir.parent.glob("**/escaped.txt"))
    nul = tarn.raw("PUT", f"/api/2.0/fs/files{VOLUME}/a%00b", data=b"x")
    assert nul.status_code == 400
    with pytest.raises(errors.BadRequest):
        w.files.upload("/tmp/outside.txt", io.BytesIO(b"x"))
    with pytest.raises(errors.BadRequest):
        w.files.upload("/Volumes/files_cat/raw", io.BytesIO(b"x"))
    with pytest.raises(errors.NotFound) as unknown:
        w.files.upload("/Volumes/files_cat/raw/no_such_volume/x.csv", io.BytesIO(b"x"))
    assert unknown.value.error_code == "NOT_FOUND"
    assert_intact(w, stored)


def test_symlinks_out_of_a_volume_are_refused(w, volume_dir, stored, tmp_path):
    (volume_dir / "etc-link").symlink_to("/etc")
    outside = tmp_path / "outside"
    outside.mkdir()
    (volume_dir / "out-link").symlink_to(outside)
    try:
        with pytest.raises(errors.PermissionDenied):
            w.files.download(f"{VOLUME}/etc-link/passwd")
        with pytest.raises(errors.PermissionDenied):
            w.files.get_metadata(f"{VOLUME}/etc-link/hostname")
        with pytest.raises(errors.PermissionDenied):
            w.files.upload(f"{VOLUME}/out-link/planted.txt", io.BytesIO(b"x"))
        with pytest.raises(errors.PermissionDenied):
            w.dbfs.read(f"{VOLUME}/etc-link/passwd")
        assert list(outside.iterdir()) == []
        names = [e.name for e in w.files.list_directory_contents(VOLUME)]
        assert "keep" in names and "etc-link" not in names and "out-link" not in names
    finally:
        (volume_dir / "etc-link").unlink()
        (volume_dir / "out-link").unlink()
    assert_intact(w, stored)


def test_dbfs_streams_blocks_and_reads_ranges(w):
    data = os.urandom((2 << 20) + 12345)  # more than two 1 MB blocks
    w.dbfs.upload("/tarn-tests/blob.bin", io.BytesIO(data), overwrite=True)
    status = w.dbfs.get_status("dbfs:/tarn-tests/blob.bin")
    assert (status.file_size, status.is_dir, status.path) == (len(data), False, "/tarn-tests/blob.bin")
    assert w.dbfs.download("/tarn-tests/blob.bin").read() == data

    handle = w.dbfs.create("/tarn-tests/manual.bin", overwrite=False).handle
    for offset in range(0, len(data), 1 << 20):
        w.dbfs.add_block(handle, base64.b64encode(data[offset : offset + (1 << 20)]).decode())
    # Nothing is visible until the stream closes.
    with pytest.raises(errors.NotFound):
        w.dbfs.get_status("/tarn-tests/manual.bin")
    w.dbfs.close(handle)
    chunk = w.dbfs.read("/tarn-tests/manual.bin", offset=(1 << 20) - 3, length=10)
    assert chunk.bytes_read == 10 and base64.b64decode(chunk.data) == data[(1 << 20) - 3 : (1 << 20) + 7]
    past_end = w.dbfs.read("/tarn-tests/manual.bin", offset=len(data) + 1, length=10)
    assert past_end.bytes_read == 0
    with pytest.raises(errors.ResourceAlreadyExists):
        w.dbfs.create("/tarn-tests/manual.bin", overwrite=False)
    with pytest.raises(errors.ResourceDoesNotExist):
        w.dbfs.close(handle)
    assert sorted(f.path for f in w.dbfs.list("/tarn-tests")) == ["/tarn-tests/blob.bin", "/tarn-tests/manual.bin"]


def test_dbfs_errors_keep_what_is_stored(w):
    w.dbfs.mkdirs("/keep/nested")
    w.dbfs.put("/keep/nested/a.txt", contents=base64.b64encode(b"kept").decode(), overwrite=True)
    handle = w.dbfs.create("/keep/b.txt", overwrite=True).handle
    with pytest.raises(errors.BadRequest) as too_big:
        w.dbfs.add_block(handle, base64.b64encode(b"x" * ((1 << 20) + 1)).decode())
    assert too_big.value.error_code == "MAX_BLOCK_SIZE_EXCEEDED"
    with pytest.raises(errors.BadRequest) as too_long:
        w.dbfs.read("/keep/nested/a.txt", length=(1 << 20) + 1)
    assert too_long.value.error_code == "MAX_READ_SIZE_EXCEEDED"
    # w.dbfs.delete refuses directories itself; the plain API asks the server.
    with pytest.raises(errors.BadRequest) as not_empty:
        DbfsAPI(w.api_client).delete("/keep", recursive=False)
    assert not_empty.value.error_code == "IO_ERROR"
    with pytest.raises(errors.InvalidParameterValue):
        w.dbfs.put("/keep/../../escaped.txt", contents="eA==")
    with pytest.raises(errors.InvalidParameterValue):
        w.dbfs.get_status("keep/nested/a.txt")
    with pytest.raises(errors.ResourceAlreadyExists):
        w.dbfs.put("/keep/nested/a.txt", contents="eA==", overwrite=False)
    with pytest.raises(errors.ResourceDoesNotExist):
        w.dbfs.get_status("/keep/missing")
    assert base64.b64decode(w.dbfs.read("/keep/nested/a.txt").data) == b"kept"
    w.dbfs.move("/keep/nested", "/moved/nested")
    assert w.dbfs.download("/moved/nested/a.txt").read() == b"kept"
    with pytest.raises(errors.ResourceDoesNotExist):
        w.dbfs.move("/keep/nested", "/moved/again")
    w.dbfs.close(handle)
    w.dbfs.delete("/keep", recursive=True)
    w.dbfs.delete("/moved", recursive=True)
    assert not w.dbfs.exists("/keep")


def test_dbfs_paths_reach_volumes(w, volume_dir):
    w.dbfs.put(f"dbfs:{VOLUME}/from_dbfs.txt", contents=base64.b64encode(b"hello").decode(), overwrite=True)
    assert w.files.download(f"{VOLUME}/from_dbfs.txt").contents.read() == b"hello"
    assert w.dbfs.get_status(f"{VOLUME}/from_dbfs.txt").file_size == 5
    assert (volume_dir / "from_dbfs.txt").read_bytes() == b"hello"


NOTEBOOK = b"# Databricks notebook source\nprint('hi')\n\n# COMMAND ----------\n\n# MAGIC %md\n# MAGIC # Notes\n"
IPYNB = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Analysis"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": ["x = 40 + 2\n", "x"]},
    ],
    "metadata": {"language_info": {"name": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_workspace_notebooks_files_and_jupyter(w):
    home = f"/Users/{w.current_user.me().user_name}"
    assert w.workspace.get_status(home).object_type == ObjectType.DIRECTORY
    base = f"{home}/project"
    w.workspace.mkdirs(f"{base}/sub")
    w.workspace.upload(f"{base}/etl.py", NOTEBOOK)  # SOURCE, language from the suffix
    nb = w.workspace.get_status(f"{base}/etl.py")
    assert (nb.object_type, nb.language, nb.size) == (ObjectType.NOTEBOOK, Language.PYTHON, len(NOTEBOOK))
    assert nb.object_id > 0 and nb.created_at > 0 and nb.modified_at >= nb.created_at
    assert w.workspace.download(f"{base}/etl.py").read() == NOTEBOOK
    exported = w.workspace.export(f"{base}/etl.py", format=ExportFormat.SOURCE)
    assert base64.b64decode(exported.content) == NOTEBOOK and exported.file_type == "py"

    # A SQL notebook from JSON without its header gets one.
    w.workspace.import_(
        f"{base}/report", content=base64.b64encode(b"SELECT 1").decode(), format=ImportFormat.SOURCE, language=Language.SQL
    )
    assert base64.b64decode(w.workspace.export(f"{base}/report").content) == b"-- Databricks notebook source\nSELECT 1"

    w.workspace.upload(f"{base}/config.json", json.dumps(RECORDS).encode(), format=ImportFormat.AUTO)
    config = w.workspace.get_status(f"{base}/config.json")
    assert (config.object_type, config.language) == (ObjectType.FILE, None)
    assert json.loads(w.workspace.download(f"{base}/config.json").read()) == RECORDS

    w.workspace.upload(f"{base}/analysis.ipynb", json.dumps(IPYNB).encode(), format=ImportFormat.AUTO)
    analysis = w.workspace.get_status(f"{base}/analysis")
    assert (analysis.object_type, analysis.language) == (ObjectType.NOTEBOOK, Language.PYTHON)
    doc = json.loads(base64.b64decode(w.workspace.export(f"{base}/analysis", format=ExportFormat.JUPYTER).content))
    assert [(c["cell_type"], "".join(c["source"])) for c in doc["cells"]] == [
        ("markdown", "# Analysis"),
        ("code", "x = 40 + 2\nx"),
    ]
    source = w.workspace.download(f"{base}/analysis", format=ExportFormat.SOURCE).read().decode()
    assert source.startswith("# Databricks notebook source\n") and "# MAGIC %md" in source

    listed = {(o.path.rsplit("/", 1)[1], o.object_type) for o in w.workspace.list(base)}
    assert listed == {
        ("analysis", ObjectType.NOTEBOOK),
        ("config.json", ObjectType.FILE),
        ("etl.py", ObjectType.NOTEBOOK),
        ("report", ObjectType.NOTEBOOK),
        ("sub", ObjectType.DIRECTORY),
    }
    assert {o.path for o in w.workspace.list(f"/Workspace{base}", recursive=True)} >= {f"{base}/etl.py"}

    # Overwriting keeps the object's id.
    w.workspace.upload(f"{base}/etl.py", NOTEBOOK + b"\n# COMMAND ----------\n\nprint(2)\n", overwrite=True)
    assert w.workspace.get_status(f"{base}/etl.py").object_id == nb.object_id
    w.workspace.delete(base, recursive=True)
    with pytest.raises(errors.NotFound):
        w.workspace.get_status(f"{base}/etl.py")


def test_workspace_refusals_keep_what_is_stored(w):
    base = f"/Users/{w.current_user.me().user_name}/guarded"
    w.workspace.mkdirs(base)
    w.workspace.upload(f"{base}/nb.py", NOTEBOOK)
    with pytest.raises(errors.ResourceAlreadyExists):
        w.workspace.upload(f"{base}/nb.py", b"# Databricks notebook source\nprint('other')\n")
    with pytest.raises(errors.BadRequest) as not_empty:
        w.workspace.delete(base)
    assert not_empty.value.error_code == "DIRECTORY_NOT_EMPTY"
    with pytest.raises(errors.ResourceAlreadyExists):
        w.workspace.mkdirs(f"{base}/nb.py/child")
    with pytest.raises(errors.NotFound):
        w.workspace.upload(f"{base}/missing/dir/x.py", NOTEBOOK)
    with pytest.raises(errors.BadRequest):
        w.workspace.import_(f"{base}/../../escaped", content="eA==", language=Language.PYTHON)
    # SOURCE needs a language and .csv implies none; `upload` re-raises the
    # INVALID_PARAMETER_VALUE as a plain DatabricksError with a hint.
    with pytest.raises(errors.DatabricksError) as no_language:
        w.workspace.upload(f"{base}/data.csv", b"a,b\n")
    assert no_language.value.error_code == "INVALID_PARAMETER_VALUE" and "ImportFormat.AUTO" in str(no_language.value)
    with pytest.raises(errors.BadRequest) as too_big:
        w.workspace.import_(f"{base}/huge", content=base64.b64encode(b"x" * ((10 << 20) + 1)).decode(),
                            format=ImportFormat.RAW)
    assert too_big.value.error_code == "MAX_NOTEBOOK_SIZE_EXCEEDED"
    with pytest.raises(errors.NotFound):
        w.workspace.get_status(f"{base}/nowhere")
    assert w.workspace.download(f"{base}/nb.py").read() == NOTEBOOK
    assert [o.path for o in w.workspace.list(base)] == [f"{base}/nb.py"]
    w.workspace.delete(base, recursive=True)
