"""Runtimes, cluster libraries and notebook-scoped libraries through
databricks-sdk: the libraries Databricks Runtime ships are there (`import
mlflow, sklearn` logs to tarn), `w.libraries` installs PyPI packages, wheels
and requirements files on a running cluster, `%pip install` and
`dbutils.library.restartPython()` give one context its own environment,
`%sh` runs a shell command."""

import base64
import datetime
import io
import textwrap
import time
import uuid
import zipfile

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.compute import (
    CommandStatus,
    Language,
    Library,
    LibraryInstallStatus,
    PythonPyPiLibrary,
    ResultType,
    State,
)
from databricks.sdk.service.jobs import (
    ConditionTask,
    ConditionTaskOp,
    JobCluster,
    JobParameterDefinition,
    NotebookTask,
    RunResultState,
    Task,
    TaskDependency,
)
from databricks.sdk.service.compute import ClusterSpec
from databricks.sdk.service.workspace import ImportFormat
from test_job_runs import DATA_PREP, FEATURE_BUILD, REGISTER, by_key, put_notebook

WAIT = datetime.timedelta(minutes=6)
STANDARD = "16.4.x-scala2.12"


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def cluster(w):
    c = w.clusters.create_and_wait(cluster_name="runtimes", spark_version=STANDARD, num_workers=0, timeout=WAIT)
    yield c
    w.clusters.permanent_delete(c.cluster_id)


class Context:
    def __init__(self, w, cluster_id):
        self.w, self.cluster_id = w, cluster_id
        self.id = w.command_execution.create_and_wait(cluster_id=cluster_id, language=Language.PYTHON, timeout=WAIT).id

    def run(self, code):
        return self.w.command_execution.execute_and_wait(
            cluster_id=self.cluster_id, context_id=self.id, language=Language.PYTHON, command=code, timeout=WAIT
        ).results

    def ok(self, code):
        results = self.run(code)
        assert results.result_type != ResultType.ERROR, (results.summary, results.cause)
        return results.data

    def destroy(self):
        self.w.command_execution.destroy(cluster_id=self.cluster_id, context_id=self.id)


def test_runtimes_are_listed_and_unknown_ones_refused(w):
    keys = [v.key for v in w.clusters.spark_versions().versions]
    assert {"16.4.x-scala2.12", "16.4.x-scala2.13", "16.4.x-cpu-ml-scala2.12"} <= set(keys)
    assert w.clusters.select_spark_version(latest=True, long_term_support=True) == "16.4.x-scala2.12"
    assert w.clusters.select_spark_version(latest=True, long_term_support=True, ml=True) == "16.4.x-cpu-ml-scala2.12"
    before = [c.cluster_id for c in w.clusters.list()]
    with pytest.raises(InvalidParameterValue, match="Invalid spark version 9.9.x-scala2.12"):
        w.clusters.create(spark_version="9.9.x-scala2.12")
    with pytest.raises(InvalidParameterValue, match="GPU runtime"):
        w.clusters.create(spark_version="16.4.x-gpu-ml-scala2.12")
    assert [c.cluster_id for c in w.clusters.list()] == before


def test_a_context_has_the_runtime_libraries_and_mlflow_logs_to_tarn(w, tarn, cluster):
    ctx = Context(w, cluster.cluster_id)
    experiment = f"/Users/admin/{unique('runtime')}"
    out = ctx.ok(
        "import mlflow, sklearn, scipy, matplotlib, pandas\n"
        f"mlflow.set_experiment({experiment!r})\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_param('alpha', 0.5)\n"
        "    mlflow.log_metric('rmse', 0.25)\n"
        "print(run.info.run_id, sklearn.__version__, pandas.__version__)\n"
    )
    run_id, sklearn_version, pandas_version = out.split()[-3:]
    # The versions the runtime's table pins (scikit-learn as on Databricks;
    # pandas raised to what pyspark-client 4.2 needs).
    assert (sklearn_version, pandas_version) == ("1.4.2", "2.2.0")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tarn.url)
    logged = client.get_run(run_id)
    assert logged.data.metrics == {"rmse": 0.25} and logged.data.params == {"alpha": "0.5"}
    assert client.get_experiment(logged.info.experiment_id).name == experiment
    ctx.destroy()


def wheel(name, version, body):
    """A minimal pure-Python wheel holding one module."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tarn-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return buffer.getvalue()


def statuses(w, cluster_id):
    out = {}
    for s in w.libraries.cluster_status(cluster_id):
        lib = s.library
        key = lib.pypi.package if lib.pypi else lib.whl or lib.requirements or lib.jar
        out[key] = (s.status, " ".join(s.messages or []))
    return out


def wait_installed(w, cluster_id, count):
    deadline = time.time() + WAIT.total_seconds()
    while time.time() < deadline:
        found = statuses(w, cluster_id)
        done = [s for s, _ in found.values() if s in (LibraryInstallStatus.INSTALLED, LibraryInstallStatus.FAILED)]
        if len(done) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f"libraries did not settle: {statuses(w, cluster_id)}")


def test_cluster_libraries_install_fail_alone_and_uninstall_on_restart(w, cluster):
    schema = unique("libs")
    w.schemas.create(name=schema, catalog_name="main")
    w.volumes.create(catalog_name="main", schema_name=schema, name="wheels", volume_type=VolumeType.MANAGED)
    whl = f"/Volumes/main/{schema}/wheels/tarn_probe-1.0-py3-none-any.whl"
    w.files.upload(whl, io.BytesIO(wheel("tarn_probe", "1.0", "ANSWER = 42\n")))
    requirements = f"/Users/admin/{unique('req')}/requirements.txt"
    w.workspace.mkdirs(requirements.rsplit("/", 1)[0])
    w.workspace.import_(
        requirements,
        content=base64.b64encode(b"tabulate==0.9.0\n").decode(),
        format=ImportFormat.AUTO,
        overwrite=True,
    )
    before = Context(w, cluster.cluster_id)

    w.libraries.install(
        cluster.cluster_id,
        [
            Library(pypi=PythonPyPiLibrary(package="simplejson==3.19.3")),
            Library(pypi=PythonPyPiLibrary(package="tarn-no-such-package-xyz==1.0")),
            Library(whl=whl),
            Library(requirements=requirements),
            Library(jar="dbfs:/FileStore/jars/x.jar"),
        ],
    )
    found = wait_installed(w, cluster.cluster_id, 5)
    assert found["simplejson==3.19.3"][0] == LibraryInstallStatus.INSTALLED
    assert found[whl][0] == LibraryInstallStatus.INSTALLED
    assert found[requirements][0] == LibraryInstallStatus.INSTALLED
    status, message = found["tarn-no-such-package-xyz==1.0"]
    assert status == LibraryInstallStatus.FAILED and "tarn-no-such-package-xyz" in message, message
    assert found["dbfs:/FileStore/jars/x.jar"][0] == LibraryInstallStatus.FAILED
    assert w.clusters.get(cluster.cluster_id).state == State.RUNNING
    listed = [s.cluster_id for s in w.libraries.all_cluster_statuses()]
    assert cluster.cluster_id in listed

    # A context created after the install sees the libraries; one from before does not.
    after = Context(w, cluster.cluster_id)
    assert after.ok("import simplejson, tabulate, tarn_probe\nprint(simplejson.__version__, tarn_probe.ANSWER)").split() == [
        "3.19.3",
        "42",
    ]
    assert before.run("import tarn_probe").result_type == ResultType.ERROR

    # Paths a caller cannot name are refused before anything is kept.
    for bad in ["/etc/passwd.whl", f"/Volumes/main/{schema}/wheels/missing-1.0-py3-none-any.whl", "/tmp/x.whl"]:
        with pytest.raises(InvalidParameterValue):
            w.libraries.install(cluster.cluster_id, [Library(whl=bad)])
    assert len(statuses(w, cluster.cluster_id)) == 5

    w.libraries.uninstall(cluster.cluster_id, [Library(pypi=PythonPyPiLibrary(package="simplejson==3.19.3"))])
    assert statuses(w, cluster.cluster_id)["simplejson==3.19.3"][0] == LibraryInstallStatus.UNINSTALL_ON_RESTART
    w.clusters.restart_and_wait(cluster.cluster_id, timeout=WAIT)
    found = wait_installed(w, cluster.cluster_id, 4)
    assert "simplejson==3.19.3" not in found and found[whl][0] == LibraryInstallStatus.INSTALLED
    # Once a library set's environment is built, a start runs the engine in
    # it too, so Python UDFs see the libraries.
    w.clusters.restart_and_wait(cluster.cluster_id, timeout=WAIT)
    wait_installed(w, cluster.cluster_id, 4)
    restarted = Context(w, cluster.cluster_id)
    assert restarted.ok(
        "from pyspark.sql.functions import udf\n"
        "@udf('int')\n"
        "def answer(x):\n"
        "    import tarn_probe\n"
        "    return tarn_probe.ANSWER\n"
        "print(spark.range(1).select(answer('id')).first()[0])"
    ).strip() == "42"
    assert restarted.run("import simplejson").result_type == ResultType.ERROR
    restarted.destroy()


def test_pip_in_a_context_restarts_only_that_context(w, cluster):
    one, other = Context(w, cluster.cluster_id), Context(w, cluster.cluster_id)
    one.ok("kept = 1")
    out = one.ok("%pip install -q tabulate==0.9.0 'cowsay==6.1'")
    assert "cowsay==6.1" in out and "restarted" in out
    assert one.ok("import cowsay, tabulate; print(cowsay.__name__, 'kept' in globals())").split() == ["cowsay", "False"]
    assert other.run("import cowsay").result_type == ResultType.ERROR
    assert other.ok("print(1 + 1)").strip() == "2"

    failed = one.run("%pip install tarn-no-such-package-xyz==1.0")
    assert failed.result_type == ResultType.ERROR and "tarn-no-such-package-xyz" in failed.cause
    assert one.ok("import cowsay; print('still here')").strip() == "still here"

    one.ok("x = 5")
    one.ok("dbutils.library.restartPython()")
    assert one.ok("print('x' in globals())").strip() == "False"
    assert one.ok("import cowsay; print(cowsay.__name__)").strip() == "cowsay", "the %pip environment survives"

    assert one.ok("%sh\necho hello from $0\npwd").splitlines()[0] == "hello from bash"
    shell_failure = one.run("%sh\necho partial; exit 3")
    assert shell_failure.result_type == ResultType.ERROR and "non-zero status 3" in shell_failure.summary
    for context in (one, other):
        context.destroy()


TRAIN_NOTEBOOK = """
    import mlflow
    import mlflow.sklearn
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    pdf = spark.table(dbutils.widgets.get("table") + "_features").toPandas()
    X, y = pdf[["x", "y", "xy", "x2"]], pdf["label"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    mlflow.set_experiment(dbutils.widgets.get("experiment"))
    with mlflow.start_run():
        model = LogisticRegression().fit(X_train, y_train)
        accuracy = float(model.score(X_test, y_test))
        mlflow.log_metric("accuracy", accuracy)
        info = mlflow.sklearn.log_model(model, artifact_path="model")
    dbutils.jobs.taskValues.set("accuracy", accuracy)
    dbutils.jobs.taskValues.set("model_uri", info.model_uri)
    if dbutils.widgets.get("ml") == "true":
        import lightgbm, xgboost
        print("ml libraries", xgboost.__version__, lightgbm.__version__)
    print("mlflow", mlflow.__version__, "accuracy", accuracy)
"""

NOTEBOOK_PIP = """
    # MAGIC %pip install tabulate==0.9.0

    # COMMAND ----------

    import tabulate
    print("tabulate", tabulate.__version__)
"""


@pytest.mark.parametrize("spark_version", [STANDARD, "16.4.x-cpu-ml-scala2.12"])
def test_the_ml_job_runs_unchanged_on_a_runtime(w, spark_version):
    """The five-task ML job as written for Databricks: no libraries, no
    environments; the runtime has mlflow and scikit-learn (and the ML
    runtime xgboost and lightgbm), a notebook adds one with %pip."""
    base = f"/Users/admin/{unique('mljob')}"
    data_prep = textwrap.dedent(NOTEBOOK_PIP) + "\n# COMMAND ----------\n\n" + textwrap.dedent(DATA_PREP)
    put_notebook(w, f"{base}/data_prep", data_prep)
    put_notebook(w, f"{base}/feature_build", FEATURE_BUILD)
    put_notebook(w, f"{base}/train", TRAIN_NOTEBOOK)
    put_notebook(w, f"{base}/register", REGISTER)
    ml = "-ml-" in spark_version
    notebook = lambda key, path, after=(): Task(  # noqa: E731
        task_key=key,
        job_cluster_key="main",
        notebook_task=NotebookTask(notebook_path=f"{base}/{path}"),
        depends_on=[TaskDependency(task_key=a) for a in after],
    )
    job = w.jobs.create(
        name=unique("ml"),
        job_clusters=[JobCluster(job_cluster_key="main", new_cluster=ClusterSpec(spark_version=spark_version, num_workers=0))],
        parameters=[
            JobParameterDefinition(name="table", default=f"main.default.{unique('points')}"),
            JobParameterDefinition(name="experiment", default=f"{base}/experiment"),
            JobParameterDefinition(name="model_name", default=unique("iris")),
            JobParameterDefinition(name="ml", default=str(ml).lower()),
        ],
        tasks=[
            notebook("data_prep", "data_prep"),
            notebook("feature_build", "feature_build", ["data_prep"]),
            notebook("train", "train", ["feature_build"]),
            Task(
                task_key="validate",
                depends_on=[TaskDependency(task_key="train")],
                condition_task=ConditionTask(
                    op=ConditionTaskOp.GREATER_THAN_OR_EQUAL, left="{{tasks.train.values.accuracy}}", right="0.8"
                ),
            ),
            Task(
                task_key="register_model",
                job_cluster_key="main",
                depends_on=[TaskDependency(task_key="validate", outcome="true")],
                notebook_task=NotebookTask(notebook_path=f"{base}/register"),
            ),
        ],
    )
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    tasks = by_key(run)
    logs = {k: w.jobs.get_run_output(v[-1].run_id) for k, v in tasks.items() if k != "validate"}
    failures = {k: (v[-1].state.state_message, logs.get(k) and logs[k].error_trace) for k, v in tasks.items()}
    assert run.state.result_state == RunResultState.SUCCESS, failures
    assert "tabulate 0.9.0" in logs["data_prep"].logs
    words = logs["train"].logs.split()
    assert words[words.index("mlflow") + 1] == ("2.22.0"), "the runtime's own mlflow"
    assert float(words[words.index("accuracy") + 1]) >= 0.8
    assert ("ml libraries" in logs["train"].logs) == ml
    assert logs["register_model"].notebook_output.result == "1"
    cluster = w.clusters.get(tasks["train"][0].cluster_instance.cluster_id)
    assert cluster.spark_version == spark_version
    w.jobs.delete(job.job_id)
