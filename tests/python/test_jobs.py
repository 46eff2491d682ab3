"""Job definitions through databricks-sdk's `w.jobs`: create, get, list,
reset, update, delete, and the settings Databricks refuses at create."""

import uuid

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotImplemented, ResourceDoesNotExist
from databricks.sdk.service import compute, jobs


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def notebook(key, depends_on=(), **kw):
    return jobs.Task(
        task_key=key,
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
        notebook_task=jobs.NotebookTask(notebook_path=f"/Workspace/ml/{key}"),
        job_cluster_key="main",
        **kw,
    )


MAIN = jobs.JobCluster(
    job_cluster_key="main",
    new_cluster=compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="local", num_workers=0),
)


def ml_job(name):
    """The five-task ML DAG with a condition gate fed by a task value."""
    return dict(
        name=name,
        job_clusters=[MAIN],
        parameters=[jobs.JobParameterDefinition(name="threshold", default="0.8")],
        tasks=[
            notebook("data_prep"),
            notebook("feature_build", ["data_prep"]),
            notebook("train", ["feature_build"], max_retries=1, min_retry_interval_millis=1000),
            jobs.Task(
                task_key="validate",
                depends_on=[jobs.TaskDependency(task_key="train")],
                condition_task=jobs.ConditionTask(
                    op=jobs.ConditionTaskOp.GREATER_THAN_OR_EQUAL,
                    left="{{tasks.train.values.accuracy}}",
                    right="{{job.parameters.threshold}}",
                ),
            ),
            jobs.Task(
                task_key="register_model",
                depends_on=[jobs.TaskDependency(task_key="validate", outcome="true")],
                notebook_task=jobs.NotebookTask(
                    notebook_path="/Workspace/ml/register", base_parameters={"run": "{{job.run_id}}"}
                ),
                job_cluster_key="main",
            ),
        ],
    )


def test_job_definitions_round_trip(w):
    name = unique("ml-daily")
    created = w.jobs.create(**ml_job(name))
    job = w.jobs.get(created.job_id)
    assert job.settings.name == name and job.creator_user_name
    assert [t.task_key for t in job.settings.tasks] == [
        "data_prep",
        "feature_build",
        "train",
        "validate",
        "register_model",
    ]
    assert job.settings.tasks[4].depends_on[0].outcome == "true"
    assert job.settings.max_concurrent_runs == 1

    listed = [j for j in w.jobs.list(name=name.upper())]
    assert [j.job_id for j in listed] == [created.job_id]
    assert not listed[0].settings.tasks
    expanded = list(w.jobs.list(name=name, expand_tasks=True))
    assert len(expanded[0].settings.tasks) == 5

    # update merges tasks by key and removes what fields_to_remove names.
    w.jobs.update(
        created.job_id,
        new_settings=jobs.JobSettings(tasks=[notebook("data_prep", timeout_seconds=600)], tags={"team": "ml"}),
        fields_to_remove=["tasks/register_model"],
    )
    job = w.jobs.get(created.job_id)
    assert [t.task_key for t in job.settings.tasks] == ["data_prep", "feature_build", "train", "validate"]
    assert job.settings.tasks[0].timeout_seconds == 600 and job.settings.tags == {"team": "ml"}

    w.jobs.reset(created.job_id, new_settings=jobs.JobSettings(name=name, tasks=[notebook("only")], job_clusters=[MAIN]))
    assert [t.task_key for t in w.jobs.get(created.job_id).settings.tasks] == ["only"]

    w.jobs.delete(created.job_id)
    with pytest.raises(ResourceDoesNotExist):
        w.jobs.get(created.job_id)


def test_list_pages(w):
    prefix = unique("paged")
    ids = [w.jobs.create(name=f"{prefix}", tasks=[notebook("t")], job_clusters=[MAIN]).job_id for _ in range(5)]
    assert [j.job_id for j in w.jobs.list(name=prefix, limit=2)] == ids[::-1]
    page = w.api_client.do("GET", "/api/2.2/jobs/list", query={"name": prefix, "limit": 2})
    assert page["has_more"] and len(page["jobs"]) == 2 and page["next_page_token"]
    for job_id in ids:
        w.jobs.delete(job_id)


@pytest.mark.parametrize(
    "tasks, clusters, problem",
    [
        ([notebook("a", ["c"]), notebook("b", ["a"]), notebook("c", ["b"])], [MAIN], "cycle: a -> c -> b -> a"),
        ([notebook("a", ["ghost"])], [MAIN], "'ghost'"),
        (
            [
                jobs.Task(
                    task_key="a",
                    existing_cluster_id="0000-000000-nosuchcl",
                    notebook_task=jobs.NotebookTask(notebook_path="/n"),
                )
            ],
            [],
            "cluster 0000-000000-nosuchcl does not exist",
        ),
        (
            [
                notebook("a"),
                jobs.Task(
                    task_key="b",
                    depends_on=[jobs.TaskDependency(task_key="a")],
                    notebook_task=jobs.NotebookTask(notebook_path="/n", base_parameters={"x": "{{tasks.zz.values.v}}"}),
                    job_cluster_key="main",
                ),
            ],
            [MAIN],
            "no task 'zz'",
        ),
        (
            [
                notebook("a"),
                jobs.Task(
                    task_key="b",
                    notebook_task=jobs.NotebookTask(notebook_path="/n", base_parameters={"x": "{{tasks.a.values.v}}"}),
                    job_cluster_key="main",
                ),
            ],
            [MAIN],
            "task 'a' is not upstream of this task",
        ),
        ([notebook("a")], [], "job_cluster_key 'main'"),
    ],
)
def test_bad_settings_are_refused_naming_the_problem(w, tasks, clusters, problem):
    name = unique("bad")
    with pytest.raises(InvalidParameterValue, match=problem.replace("(", r"\(").replace(")", r"\)")):
        w.jobs.create(name=name, tasks=tasks, job_clusters=clusters)
    assert list(w.jobs.list(name=name)) == []


def test_what_is_not_there_yet_says_so(w):
    with pytest.raises(NotImplemented):
        w.jobs.create(name=unique("jar"), tasks=[jobs.Task(task_key="j", spark_jar_task=jobs.SparkJarTask(main_class_name="M"))])
    with pytest.raises(NotImplemented):
        w.api_client.do("GET", "/api/2.1/jobs/runs/export", query={"run_id": 1})
